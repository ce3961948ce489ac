// Package probe is the loop every consumer probe shares: call the target through the tool's own client at a
// fixed interval and print one JSON line per call, and one when the credential the tool reads changes, so a
// test can count calls, failures and rotations. Standard library only: each probe pins its tool's modules.
package probe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Call makes one call to the target with the client the tool built from what it read; it returns the user
// the target saw and a digest of the credential the tool read (a change is a rotation seen).
type Call func(ctx context.Context) (user string, credential string, err error)

// Flags are the options every probe takes.
type Flags struct {
	SourceKubeconfig string
	Namespace        string
	Name             string
	Interval         time.Duration
}

// ParseFlags reads the shared flags; a probe may define its own on flag.CommandLine first.
func ParseFlags() Flags {
	var f Flags
	flag.StringVar(&f.SourceKubeconfig, "source-kubeconfig", "", "kubeconfig of the cluster holding the published Secret")
	flag.StringVar(&f.Namespace, "namespace", "", "namespace of the published Secret")
	flag.StringVar(&f.Name, "name", "", "name of the published Secret (or the tool's name for it)")
	flag.DurationVar(&f.Interval, "interval", time.Second, "time between calls")
	flag.Parse()
	return f
}

// Digest names a credential without revealing it.
func Digest(parts ...[]byte) string {
	hash := sha256.New()
	for _, part := range parts {
		hash.Write(part)
	}
	return hex.EncodeToString(hash.Sum(nil))[:16]
}

type line struct {
	Tool       string `json:"tool"`
	Event      string `json:"event"`
	Call       int    `json:"call,omitempty"`
	OK         bool   `json:"ok"`
	Started    string `json:"started,omitempty"`
	User       string `json:"user,omitempty"`
	Credential string `json:"credential,omitempty"`
	Error      string `json:"error,omitempty"`
	Message    string `json:"message,omitempty"`
	Time       string `json:"time"`
}

func timestamp(at time.Time) string { return at.UTC().Format(time.RFC3339Nano) }

func emit(l line) {
	l.Time = timestamp(time.Now())
	out, _ := json.Marshal(l)
	fmt.Println(string(out))
}

// Run calls until SIGTERM or SIGINT, printing each result.
func Run(tool string, interval time.Duration, call Call) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	emit(line{Tool: tool, Event: "start", OK: true})
	seen := ""
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for n := 1; ; n++ {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		started := time.Now()
		user, credential, err := call(callCtx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		if credential != "" && credential != seen {
			if seen != "" {
				emit(line{Tool: tool, Event: "rotation", OK: true, Credential: credential})
			}
			seen = credential
		}
		result := line{Tool: tool, Event: "call", Call: n, OK: err == nil, Started: timestamp(started), User: user, Credential: credential}
		if err != nil {
			result.Error = err.Error()
		}
		emit(result)
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	emit(line{Tool: tool, Event: "stop", OK: true})
}

// Log prints what the tool's own code logged (client-go's log, for one), so a test can relate a failed call
// to what the client did at that moment.
func Log(tool string, message string) {
	emit(line{Tool: tool, Event: "log", OK: true, Message: message})
}

// Fail ends a probe that cannot start (bad flags, an unreadable source kubeconfig).
func Fail(tool string, err error) {
	emit(line{Tool: tool, Event: "fatal", Error: err.Error()})
	os.Exit(2)
}
