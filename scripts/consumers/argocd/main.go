// Argo CD's own reading of a cluster Secret (util/db SecretToCluster, then Cluster.RESTConfig), with the
// client rebuilt when the Secret changes, as Argo CD's cluster cache does on a Secret update.
package main

import (
	"context"
	"fmt"

	"github.com/argoproj/argo-cd/v3/util/db"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"kcr.local/consumers/probe"
)

func main() {
	flags := probe.ParseFlags()
	sourceConfig, err := clientcmd.BuildConfigFromFlags("", flags.SourceKubeconfig)
	if err != nil {
		probe.Fail("argocd", err)
	}
	source := kubernetes.NewForConfigOrDie(sourceConfig)
	var target kubernetes.Interface
	version := ""
	probe.Run("argocd", flags.Interval, func(ctx context.Context) (string, string, error) {
		secret, err := source.CoreV1().Secrets(flags.Namespace).Get(ctx, flags.Name, metav1.GetOptions{})
		if err != nil {
			return "", "", fmt.Errorf("reading the cluster Secret: %w", err)
		}
		credential := probe.Digest(secret.Data["config"], secret.Data["server"])
		if credential != version {
			cluster, err := db.SecretToCluster(secret)
			if err != nil {
				return "", credential, fmt.Errorf("SecretToCluster: %w", err)
			}
			config, err := cluster.RESTConfig()
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
