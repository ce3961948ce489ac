// A ClusterProfile consumer as MultiKueue and Argo CD read one (sigs.k8s.io/cluster-inventory-api pkg/access):
// list the ClusterProfiles of a namespace in the source cluster, build the target's rest.Config from the
// provider file with access.NewFromFile and BuildConfigFromCP, keep that client until the ClusterProfile's
// access providers change, and call the target with it. The credential comes from the exec plugin the
// provider file names; client-go runs it when it has no credential, when the one it has is past the
// plugin's expirationTimestamp, and after a 401. The probe prints each plugin run (client-go's own metric)
// and, as the credential digest, the bearer token it sends or the client certificate's expiry.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/metrics"
	"sigs.k8s.io/cluster-inventory-api/client/clientset/versioned"
	"sigs.k8s.io/cluster-inventory-api/pkg/access"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

const tool = "clusterprofile"

// seen is the credential client-go last used, as a digest: the bearer token, or the certificate's expiry.
type seen struct {
	mu     sync.Mutex
	digest string
}

func (s *seen) set(value string) {
	sum := sha256.Sum256([]byte(value))
	s.mu.Lock()
	s.digest = hex.EncodeToString(sum[:])[:16]
	s.mu.Unlock()
}

func (s *seen) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.digest
}

var credential seen

// execCalls reports every run of the exec plugin (client-go's ExecPluginCalls metric).
type execCalls struct{}

func (execCalls) Increment(exitCode int, callStatus string) {
	probe.Log(tool, fmt.Sprintf("exec plugin ran: exit %d (%s)", exitCode, callStatus))
}

// certExpiry is client-go's ClientCertExpiry metric: set after each plugin run that returned a certificate.
type certExpiry struct{}

func (certExpiry) Set(expiry *time.Time) {
	if expiry != nil && !expiry.IsZero() {
		credential.set("certificate " + expiry.UTC().Format(time.RFC3339Nano))
	}
}

// bearerSeen sits inside client-go's exec round tripper, so it sees the token the plugin returned.
type bearerSeen struct{ base http.RoundTripper }

func (b bearerSeen) RoundTrip(req *http.Request) (*http.Response, error) {
	if header := req.Header.Get("Authorization"); header != "" {
		credential.set(header)
	}
	return b.base.RoundTrip(req)
}

func main() {
	providerFile := access.SetupProviderFileFlag()
	flags := probe.ParseFlags()
	metrics.Register(metrics.RegisterOpts{ExecPluginCalls: execCalls{}, ClientCertExpiry: certExpiry{}})
	providers, err := access.NewFromFile(*providerFile)
	if err != nil {
		probe.Fail(tool, err)
	}
	profiles, err := versioned.NewForConfig(kube.SourceConfig(tool, flags.SourceKubeconfig))
	if err != nil {
		probe.Fail(tool, err)
	}
	var target kube.Cached
	probe.Run(tool, flags.Interval, func(ctx context.Context) (string, string, error) {
		list, err := profiles.ApisV1alpha1().ClusterProfiles(flags.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", "", fmt.Errorf("listing ClusterProfiles: %w", err)
		}
		for i := range list.Items {
			profile := &list.Items[i]
			if profile.Name != flags.Name {
				continue
			}
			accessProviders, _ := json.Marshal(profile.Status.AccessProviders)
			client, err := target.For(probe.Digest(accessProviders), func() (*rest.Config, error) {
				config, err := providers.BuildConfigFromCP(profile)
				if err != nil {
					return nil, fmt.Errorf("BuildConfigFromCP: %w", err)
				}
				config.Wrap(func(base http.RoundTripper) http.RoundTripper { return bearerSeen{base} })
				return config, nil
			})
			if err != nil {
				return "", "", err
			}
			user, err := kube.WhoAmI(ctx, client)
			return user, credential.get(), err
		}
		return "", "", fmt.Errorf("no ClusterProfile %s/%s", flags.Namespace, flags.Name)
	})
}
