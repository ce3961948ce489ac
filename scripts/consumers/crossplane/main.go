// Crossplane provider-kubernetes v1.4.1 cannot be built here (the module proxy refuses its pinned
// crossplane-runtime/v2 v2.5.0-rc.0.0.20260922181840-9d02af3667a0 and crossplane/apis/v2 v2.4.1: 403), so
// this probe follows its documented reading with client-go alone, as its pkg/kube/client/client.go does:
// the Secret key the ProviderConfig names, loaded with clientcmd.Load, connected through the current
// context, with a client cached per digest of the credential (a rotated Secret gets a new client).
package main

import (
	"context"
	"flag"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

func main() {
	key := flag.String("key", "kubeconfig", "key of the kubeconfig in the Secret (the ProviderConfig's secretRef.key)")
	flags := probe.ParseFlags()
	source := kube.Source("crossplane", flags.SourceKubeconfig)
	var target kube.Cached
	probe.Run("crossplane", flags.Interval, func(ctx context.Context) (string, string, error) {
		secret, err := source.CoreV1().Secrets(flags.Namespace).Get(ctx, flags.Name, metav1.GetOptions{})
		if err != nil {
			return "", "", fmt.Errorf("reading the credentials Secret: %w", err)
		}
		data, found := secret.Data[*key]
		if !found {
			return "", "", fmt.Errorf("the Secret has no key %q", *key)
		}
		credential := probe.Digest(data)
		client, err := target.For(credential, func() (*rest.Config, error) {
			loaded, err := clientcmd.Load(data)
			if err != nil {
				return nil, fmt.Errorf("failed to load kubeconfig: %w", err)
			}
			if loaded.CurrentContext == "" {
				return nil, fmt.Errorf("currentContext not set in kubeconfig")
			}
			return clientcmd.NewDefaultClientConfig(*loaded, &clientcmd.ConfigOverrides{}).ClientConfig()
		})
		if err != nil {
			return "", credential, err
		}
		user, err := kube.WhoAmI(ctx, client)
		return user, credential, err
	})
}
