// Argo CD's own reading of a cluster Secret (util/db SecretToCluster, then Cluster.RESTConfig), with the
// client rebuilt when the Secret changes, as Argo CD's cluster cache does on a Secret update.
package main

import (
	"context"
	"fmt"

	"github.com/argoproj/argo-cd/v3/util/db"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

func main() {
	flags := probe.ParseFlags()
	source := kube.Source("argocd", flags.SourceKubeconfig)
	var target kube.Cached
	probe.Run("argocd", flags.Interval, func(ctx context.Context) (string, string, error) {
		secret, err := source.CoreV1().Secrets(flags.Namespace).Get(ctx, flags.Name, metav1.GetOptions{})
		if err != nil {
			return "", "", fmt.Errorf("reading the cluster Secret: %w", err)
		}
		credential := probe.Digest(secret.Data["config"], secret.Data["server"])
		client, err := target.For(credential, func() (*rest.Config, error) {
			cluster, err := db.SecretToCluster(secret)
			if err != nil {
				return nil, fmt.Errorf("SecretToCluster: %w", err)
			}
			return cluster.RESTConfig()
		})
		if err != nil {
			return "", credential, err
		}
		user, err := kube.WhoAmI(ctx, client)
		return user, credential, err
	})
}
