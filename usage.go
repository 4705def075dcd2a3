package llmgw

import "time"

// Dialects a client can speak.
const (
	DialectAnthropic = "anthropic"
	DialectOpenAI    = "openai"
	DialectResponses = "responses"
	DialectGemini    = "gemini"
)

// Tokens are the usage figures Anthropic reports for one response.
type Tokens struct {
	Input        int64 // input_tokens: the uncached part
	Output       int64 // output_tokens
	CacheRead    int64 // cache_read_input_tokens
	CacheWrite   int64 // cache_creation_input_tokens
	CacheWrite5m int64 // cache_creation.ephemeral_5m_input_tokens
	CacheWrite1h int64 // cache_creation.ephemeral_1h_input_tokens
}

// Speeds a response can report in usage.speed: fast mode (a beta on some
// Opus models) is billed at a premium.
const (
	SpeedStandard = "standard"
	SpeedFast     = "fast"
)

// Iteration is one sampling step of a request, as usage.iterations[]
// reports it: the model's own answer ("message"), a context compaction
// ("compaction"), an advisor's consultation ("advisor_message") or a
// server-side fallback ("fallback_message"). Each is billed at its own
// model's rates.
type Iteration struct {
	Type   string
	Model  string // the model that ran it; empty for the request's model
	Tokens Tokens
}

// Attempt is one try of a request on one account.
type Attempt struct {
	AccountID   int64
	AccountName string
	Status      int    // upstream HTTP status; 0 if none was received
	ErrorType   string // empty on success
	TTFB        time.Duration
}

// Failed reports whether the attempt counts as an error against its account.
func (a Attempt) Failed() bool { return a.Status == 0 || a.Status >= 400 || a.ErrorType != "" }

// Usage is the record of one inference request: one row of the request log.
// It is handed to the usage recorder after the client has its answer.
type Usage struct {
	Time        time.Time // when the request arrived
	RequestID   string
	KeyID       int64 // 0 for a static key from the config file
	KeyName     string
	AccountID   int64 // the account that gave the final answer; 0 if none did
	AccountName string
	Model       string
	Dialect     string
	Stream      bool
	Status      int    // status the client got
	ErrorType   string // Anthropic error type, empty on success
	// ErrorMessage is what the client was told went wrong: llmgw's own
	// message or the upstream's. It never holds a secret or a prompt.
	ErrorMessage string
	Attempts     []Attempt
	Tokens       Tokens
	// Iterations are the request's sampling steps when the upstream
	// reports them (usage.iterations); then they, not Tokens, are what
	// the request is billed for.
	Iterations   []Iteration
	Speed        string        // usage.speed: SpeedFast, SpeedStandard, or empty when not reported
	InferenceGeo string        // usage.inference_geo: where the request ran, when reported
	TTFB         time.Duration // to the first byte sent to the client
	Duration     time.Duration
	EndedEarly   bool // a stream that ended without message_stop
	UpstreamID   string
	// Affinity says how the request's session was routed: AffinityNew,
	// AffinityFollowed, or AffinityMoved with the reason after ": "; empty
	// when affinity is off or no session could be told.
	Affinity string
}

// How a request's session was routed (Usage.Affinity).
const (
	AffinityNew      = "new"      // the session's first request, or its binding had lapsed: bound to the account chosen
	AffinityFollowed = "followed" // sent to the account that served the session before
	AffinityMoved    = "moved"    // that account could not serve it; the session moved
)
