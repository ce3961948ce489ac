// reqprobe: SubjectAccessReviews sent by client-go as kube-controller-manager's csrapproving sends them
// (protobuf on HTTP/2; JSON with -content-type application/json; no client-side limit), one at a time, back
// to back and after idle gaps; prints each gap's samples in milliseconds as one JSON line. bench/approver.ts
// runs it beside the same requests from the approver's own client, to show what the HTTP stack, the encoding
// and an idle process cost per request.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig of the cluster")
	count := flag.Int("count", 80, "requests measured per gap")
	gaps := flag.String("gaps-ms", "0,20", "idle time before each request, comma-separated")
	contentType := flag.String("content-type", "application/vnd.kubernetes.protobuf", "what requests are sent as")
	flag.Parse()
	if err := run(*kubeconfig, *count, *gaps, *contentType); err != nil {
		fmt.Fprintln(os.Stderr, "reqprobe:", err)
		os.Exit(1)
	}
}

func run(kubeconfig string, count int, gaps string, contentType string) error {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	// kube-controller-manager's clients send protobuf; the limiter is left out, as in the approver's bare requests.
	config.ContentType = contentType
	config.QPS = -1
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:bootstrap:reqprobe",
		Groups: []string{"system:bootstrappers"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: "create", Group: "certificates.k8s.io", Resource: "certificatesigningrequests",
			Subresource: "kubeconfig-rotator", Name: "reviewed",
		},
	}}
	reviews := clientset.AuthorizationV1().SubjectAccessReviews()
	for _, field := range strings.Split(gaps, ",") {
		gapMs, err := strconv.Atoi(field)
		if err != nil {
			return fmt.Errorf("gaps-ms: %w", err)
		}
		samples := make([]float64, 0, count)
		// The first rounds warm the connection and the code paths; they are not counted.
		for round := -5; round < count; round++ {
			time.Sleep(time.Duration(gapMs) * time.Millisecond)
			started := time.Now()
			if _, err := reviews.Create(context.Background(), review, metav1.CreateOptions{}); err != nil {
				return err
			}
			if round >= 0 {
				samples = append(samples, float64(time.Since(started).Microseconds())/1000)
			}
		}
		line, _ := json.Marshal(map[string]any{"gapMs": gapMs, "samplesMs": samples})
		fmt.Println(string(line))
	}
	return nil
}
