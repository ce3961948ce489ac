// A plain long-lived client-go client: built once, from a kubeconfig file (the directory sink) or from a
// Secret read once at start (the reference Secret, as Linkerd's mirror and Admiralty read it), then used
// for every call; client-go re-reads certificate files it names by path. client-go's own log (verbosity 1) is
// printed as probe lines: it says when client-go closed its connections because the certificate changed.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"kcr.local/consumers/kube"
	"kcr.local/consumers/probe"
)

func main() {
	kubeconfigPath := flag.String("kubeconfig", "", "kubeconfig file to use (instead of a Secret)")
	key := flag.String("key", "config", "key of the kubeconfig in the Secret")
	certFile := flag.String("watch-cert", "", "certificate file whose content names the credential in use")
	tool := flag.String("tool", "client-go", "name in the output")
	flags := probe.ParseFlags()
	clientLog := funcr.New(func(prefix, args string) { probe.Log(*tool, prefix+" "+args) }, funcr.Options{Verbosity: 1})
	klog.SetLoggerWithOptions(clientLog, klog.ContextualLogger(true))
	config, err := targetConfig(*tool, *kubeconfigPath, flags, *key)
	if err != nil {
		probe.Fail(*tool, err)
	}
	target, err := kubernetes.NewForConfig(config)
	if err != nil {
		probe.Fail(*tool, err)
	}
	probe.Run(*tool, flags.Interval, func(ctx context.Context) (string, string, error) {
		credential := ""
		if *certFile != "" {
			if pem, err := os.ReadFile(*certFile); err == nil {
				sum := sha256.Sum256(pem)
				credential = hex.EncodeToString(sum[:8])
			}
		}
		user, err := kube.WhoAmI(ctx, target)
		return user, credential, err
	})
}

func targetConfig(tool string, path string, flags probe.Flags, key string) (*rest.Config, error) {
	if path != "" {
		return clientcmd.BuildConfigFromFlags("", path)
	}
	secret, err := kube.Source(tool, flags.SourceKubeconfig).CoreV1().Secrets(flags.Namespace).Get(context.Background(), flags.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the Secret: %w", err)
	}
	data, found := secret.Data[key]
	if !found {
		return nil, fmt.Errorf("the Secret has no key %q", key)
	}
	return clientcmd.RESTConfigFromKubeConfig(data)
}
