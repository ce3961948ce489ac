// Istio's own remote-secret reading (pkg/kube/multicluster): every data key of a Secret labelled
// istio/multiCluster=true is a cluster ID holding a kubeconfig; a cluster's clients are rebuilt with
// DefaultBuildClientsFromConfig when its kubeconfig's SHA-256 changes, as the secret controller does.
package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"

	"istio.io/istio/pkg/cluster"
	istiokube "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/kube/multicluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

type remote struct {
	sha    [32]byte
	client istiokube.Client
}

func main() {
	flags := probe.ParseFlags()
	source := kube.Source("istio", flags.SourceKubeconfig)
	remotes := map[string]*remote{}
	probe.Run("istio", flags.Interval, func(ctx context.Context) (string, string, error) {
		secret, err := source.CoreV1().Secrets(flags.Namespace).Get(ctx, flags.Name, metav1.GetOptions{})
		if err != nil {
			return "", "", fmt.Errorf("reading the remote secret: %w", err)
		}
		if secret.Labels[multicluster.MultiClusterSecretLabel] != "true" {
			return "", "", fmt.Errorf("the Secret lacks the label %s=true, Istio would not see it", multicluster.MultiClusterSecretLabel)
		}
		ids := make([]string, 0, len(secret.Data))
		for id := range secret.Data {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		users := ""
		for _, id := range ids {
			kubeconfig := secret.Data[id]
			sha := sha256.Sum256(kubeconfig)
			current := remotes[id]
			if current == nil || current.sha != sha {
				built, err := multicluster.DefaultBuildClientsFromConfig(kubeconfig, cluster.ID(id))
				if err != nil {
					return "", probe.Digest(kubeconfig), fmt.Errorf("cluster %s: %w", id, err)
				}
				current = &remote{sha: sha, client: built}
				remotes[id] = current
			}
			user, err := kube.WhoAmI(ctx, current.client.Kube())
			if err != nil {
				return "", probe.Digest(kubeconfig), fmt.Errorf("cluster %s: %w", id, err)
			}
			users += user
		}
		if len(ids) != 1 {
			return users, "", fmt.Errorf("the Secret holds %d cluster IDs, want exactly 1", len(ids))
		}
		return users, probe.Digest(secret.Data[ids[0]]), nil
	})
}
