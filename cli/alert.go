package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
)

// alertHowTo says how to configure webhooks.
const alertHowTo = `no webhooks are configured: add them to the config file (--config), e.g.

  alerts:
    webhooks:
      - url: ${SLACK_WEBHOOK_URL}
      - url: https://ops.example.com/llmgw
        events: [account_error, no_account, recovered]
`

func alertCommand(env *appEnv) *urfave.Command {
	return groupCommand("alert", "check the alert webhooks", `Alerts go to the webhooks of alerts.webhooks in the config file while
"llmgw serve" runs.

Example:
  llmgw --config /etc/llmgw/config.yaml alert test`,
		&urfave.Command{
			Name:      "test",
			Usage:     "send a sample alert to each webhook and show its answer",
			UsageText: "llmgw alert test",
			Description: `Sends a sample event (event "test") to every webhook of alerts.webhooks,
whatever events it asks for, one after the other and without retries, and
prints each one's HTTP status or error. It exits non-zero if any failed, or
if no webhook is configured. Webhook URLs are shown up to their host only.

Example:
  llmgw --config /etc/llmgw/config.yaml alert test`,
			Action: func(c *urfave.Context) error {
				hooks := env.cfg.Alerts.Webhooks
				if len(hooks) == 0 {
					_, _ = fmt.Fprint(c.App.ErrWriter, alertHowTo)
					return errors.New("no webhooks to test")
				}
				host, _ := os.Hostname() // only a label
				e := llmgw.Event{Kind: eventTest, Time: env.now(),
					Reason: "a test alert from \"llmgw alert test\" on " + host + ": this webhook works"}
				body := alertBody(e)
				client := &http.Client{Timeout: alertPostTimeout}
				failed := 0
				for i, w := range hooks {
					start := time.Now()
					status, err := post(c.Context, client, w.URL, body)
					took := time.Since(start).Round(time.Millisecond)
					if err != nil {
						failed++
						_, _ = fmt.Fprintf(c.App.Writer, "webhook %d %s: failed after %s: %v\n", i+1, maskURL(w.URL), took, err)
						continue
					}
					_, _ = fmt.Fprintf(c.App.Writer, "webhook %d %s: %d %s in %s\n", i+1, maskURL(w.URL), status, http.StatusText(status), took)
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d webhooks failed", failed, len(hooks))
				}
				return nil
			},
		})
}
