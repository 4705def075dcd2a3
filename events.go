package llmgw

import "time"

// EventKind names something an operator wants to hear about before a team
// member notices it.
type EventKind string

// Event kinds.
const (
	// EventAccountError: an account was put in error; Fix says how to mend it.
	EventAccountError EventKind = "account_error"
	// EventRefreshFailing: an OAuth account's token refresh keeps failing.
	EventRefreshFailing EventKind = "refresh_failing"
	// EventWindow: a subscription window passed its threshold or was rejected.
	EventWindow EventKind = "window"
	// EventKeyLimit: a client key reached 80% or 100% of a limit.
	EventKeyLimit EventKind = "key_limit"
	// EventNoAccount: no account could serve; EventRecovered follows once
	// one can again. An EventRecovered with Account set says that account's
	// OAuth refresh works again after an EventRefreshFailing.
	EventNoAccount EventKind = "no_account"
	EventRecovered EventKind = "recovered"
)

// Event is one alert. Subject (an account or key name, or "" for the pool),
// Kind and Scope together identify an episode, so repeats can be
// rate-limited.
type Event struct {
	Kind    EventKind
	Account string // the account concerned, if any
	Key     string // the client key concerned, if any
	Reason  string // what happened, in words
	Fix     string // the command that fixes it, if there is one
	// Scope narrows the episode within its subject and kind: the window
	// (five_hour) of an EventWindow, the limit and level (tokens/1d 80%) of
	// an EventKeyLimit; "" otherwise.
	Scope string
	Time  time.Time
}

// Subject is what an episode of the event is about.
func (e Event) Subject() string {
	switch {
	case e.Account != "":
		return "account " + e.Account
	case e.Key != "":
		return "key " + e.Key
	}
	return "pool"
}
