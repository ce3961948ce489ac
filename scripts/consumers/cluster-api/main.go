// Cluster API's own reading of <cluster>-kubeconfig (controllers/remote RESTConfig, through util/kubeconfig
// FromSecret), with the client rebuilt when the kubeconfig changes, as its ClusterCache reconnects.
package main

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cluster-api/controllers/remote"
	"sigs.k8s.io/cluster-api/util/kubeconfig"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

func main() {
	flags := probe.ParseFlags()
	source, err := client.New(kube.SourceConfig("cluster-api", flags.SourceKubeconfig), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		probe.Fail("cluster-api", err)
	}
	cluster := client.ObjectKey{Namespace: flags.Namespace, Name: flags.Name}
	var target kube.Cached
	probe.Run("cluster-api", flags.Interval, func(ctx context.Context) (string, string, error) {
		data, err := kubeconfig.FromSecret(ctx, source, cluster)
		if err != nil {
			return "", "", fmt.Errorf("FromSecret: %w", err)
		}
		credential := probe.Digest(data)
		client, err := target.For(credential, func() (*rest.Config, error) {
			return remote.RESTConfig(ctx, "kcr-probe", source, cluster)
		})
		if err != nil {
			return "", credential, err
		}
		user, err := kube.WhoAmI(ctx, client)
		return user, credential, err
	})
}
