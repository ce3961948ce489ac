// Flux's own kubeconfig-from-Secret client (runtime/client Impersonator with a KubeConfigReference), built
// anew for each call as a Flux controller builds it for each reconciliation.
package main

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	fluxclient "github.com/fluxcd/pkg/runtime/client"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

func main() {
	flags := probe.ParseFlags()
	source, err := client.New(kube.SourceConfig("flux", flags.SourceKubeconfig), client.Options{Scheme: scheme.Scheme})
	if err != nil {
		probe.Fail("flux", err)
	}
	reference := &meta.KubeConfigReference{SecretRef: &meta.SecretKeyReference{Name: flags.Name}}
	probe.Run("flux", flags.Interval, func(ctx context.Context) (string, string, error) {
		var secret corev1.Secret
		if err := source.Get(ctx, client.ObjectKey{Namespace: flags.Namespace, Name: flags.Name}, &secret); err != nil {
			return "", "", fmt.Errorf("reading the kubeconfig Secret: %w", err)
		}
		credential := probe.Digest(secret.Data["value"], secret.Data["value.yaml"])
		impersonator := fluxclient.NewImpersonator(source,
			fluxclient.WithKubeConfig(reference, fluxclient.KubeConfigOptions{}, flags.Namespace, nil),
			fluxclient.WithScheme(scheme.Scheme))
		target, _, err := impersonator.GetClient(ctx)
		if err != nil {
			return "", credential, fmt.Errorf("GetClient: %w", err)
		}
		review := &authenticationv1.SelfSubjectReview{}
		if err := target.Create(ctx, review); err != nil {
			return "", credential, err
		}
		return review.Status.UserInfo.Username, credential, nil
	})
}
