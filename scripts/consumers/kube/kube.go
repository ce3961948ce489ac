// Package kube is what the probes share on top of client-go: the source cluster's client, the call every
// probe makes (a SelfSubjectReview, to see the identity), and a target client rebuilt only when the
// credential the tool read changes (as the tools' own client caches do). Only client-go APIs that every
// pinned version has, so each probe keeps its tool's client-go.
package kube

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kcr.local/consumers/probe"
)

// SourceConfig is the REST config of the cluster holding the published Secret; a probe without it ends.
func SourceConfig(tool string, path string) *rest.Config {
	config, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		probe.Fail(tool, err)
	}
	return config
}

// Source is a clientset for that cluster.
func Source(tool string, path string) kubernetes.Interface {
	client, err := kubernetes.NewForConfig(SourceConfig(tool, path))
	if err != nil {
		probe.Fail(tool, err)
	}
	return client
}

// WhoAmI asks the target who the client is.
func WhoAmI(ctx context.Context, client kubernetes.Interface) (string, error) {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}

// Cached is a target client for one credential at a time.
type Cached struct {
	credential string
	client     kubernetes.Interface
}

// For returns the client for this credential, building it with build when the credential changed.
func (c *Cached) For(credential string, build func() (*rest.Config, error)) (kubernetes.Interface, error) {
	if c.client != nil && credential == c.credential {
		return c.client, nil
	}
	config, err := build()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	c.credential, c.client = credential, client
	return client, nil
}
