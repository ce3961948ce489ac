// Cluster API's own reading of <cluster>-kubeconfig (controllers/remote RESTConfig, through util/kubeconfig
// FromSecret), with the client rebuilt when the kubeconfig changes, as its ClusterCache reconnects.
package main

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/cluster-api/controllers/remote"
	"sigs.k8s.io/cluster-api/util/kubeconfig"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kcr.local/consumers/probe"
)

func main() {
	flags := probe.ParseFlags()
	sourceConfig, err := clientcmd.BuildConfigFromFlags("", flags.SourceKubeconfig)
	if err != nil {
		probe.Fail("cluster-api", err)
	}
	source, err := client.New(sourceConfig, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		probe.Fail("cluster-api", err)
	}
	cluster := client.ObjectKey{Namespace: flags.Namespace, Name: flags.Name}
	var target kubernetes.Interface
	version := ""
	probe.Run("cluster-api", flags.Interval, func(ctx context.Context) (string, string, error) {
		data, err := kubeconfig.FromSecret(ctx, source, cluster)
		if err != nil {
			return "", "", fmt.Errorf("FromSecret: %w", err)
		}
		credential := probe.Digest(data)
		if credential != version {
			config, err := remote.RESTConfig(ctx, "kcr-probe", source, cluster)
			if err != nil {
				return "", credential, fmt.Errorf("RESTConfig: %w", err)
			}
			if target, err = kubernetes.NewForConfig(config); err != nil {
				return "", credential, err
			}
			version = credential
		}
		review, err := target.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			return "", credential, err
		}
		return review.Status.UserInfo.Username, credential, nil
	})
}
