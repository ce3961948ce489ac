// Command csrprobe answers, for CertificateSigningRequests read as JSON lines on stdin, what Kubernetes
// v1.36.3 itself makes of each one, with Kubernetes' own code: whether kube-apiserver accepts it at create
// (the certificates API's create validation: first PEM block, ParseCertificateRequest, CheckSignature,
// usages, lifetime), and if so the user and groups of the certificate kube-controller-manager's signer
// issues for it, as the apiserver's x509 authenticator reads them. It prints one JSON line per input line,
// in order, so one process serves a whole test run.
//
// Input:  {"request":"<base64 of spec.request>","usages":["client auth"],"expirationSeconds":3600}
// Output: {"accepted":true,"user":"agent","groups":["team"]}
//
//	or {"accepted":false,"stage":"create"|"sign"|"authenticate","reason":"..."}
//
// Not called: the csrsigning controller's usage check for kubernetes.io/kube-apiserver-client
// (validAPIServerClientUsages in pkg/controller/certificates/signer is unexported; the approver checks usages
// itself, and this probe is about the identity), and the CertificateSubjectRestriction admission plugin
// (it refuses O=system:masters, a name the approver never approves anyway).
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"time"

	capiv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/kubernetes/pkg/apis/certificates"
	"k8s.io/kubernetes/pkg/apis/certificates/validation"
	"k8s.io/kubernetes/pkg/controller/certificates/authority"
)

type probeInput struct {
	Request           []byte   `json:"request"`
	Usages            []string `json:"usages"`
	ExpirationSeconds *int32   `json:"expirationSeconds"`
}

type probeOutput struct {
	Accepted bool     `json:"accepted"`
	Stage    string   `json:"stage,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	User     string   `json:"user,omitempty"`
	Groups   []string `json:"groups"`
}

// kube-controller-manager's --cluster-signing-duration default, and the backdating its signer applies.
const (
	signingDuration = 365 * 24 * time.Hour
	backdate        = 5 * time.Minute
	shortLived      = 8 * time.Hour
)

func main() {
	ca, err := throwawayCA()
	if err != nil {
		fmt.Fprintf(os.Stderr, "csrprobe: %v\n", err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate)
	verifyOptions := x509request.DefaultVerifyOptions()
	verifyOptions.Roots = roots
	authenticator := x509request.New(verifyOptions, x509request.CommonNameUserConversion)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	encoder := json.NewEncoder(out)
	encoder.SetEscapeHTML(false)
	for in.Scan() {
		var input probeInput
		var result probeOutput
		if err := json.Unmarshal(in.Bytes(), &input); err != nil {
			result = refused("input", err.Error())
		} else {
			result = probe(input, ca, authenticator)
		}
		if err := encoder.Encode(result); err != nil {
			fmt.Fprintf(os.Stderr, "csrprobe: %v\n", err)
			os.Exit(1)
		}
		// One answer at a time, so a caller may also ask one question at a time.
		if err := out.Flush(); err != nil {
			fmt.Fprintf(os.Stderr, "csrprobe: %v\n", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "csrprobe: reading stdin: %v\n", err)
		os.Exit(1)
	}
}

func refused(stage, reason string) probeOutput {
	return probeOutput{Stage: stage, Reason: reason, Groups: []string{}}
}

func probe(input probeInput, ca *authority.CertificateAuthority, authenticator *x509request.Authenticator) probeOutput {
	usages := make([]certificates.KeyUsage, len(input.Usages))
	v1Usages := make([]capiv1.KeyUsage, len(input.Usages))
	for i, usage := range input.Usages {
		usages[i] = certificates.KeyUsage(usage)
		v1Usages[i] = capiv1.KeyUsage(usage)
	}
	csr := &certificates.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: certificates.CertificateSigningRequestSpec{
			Request:           input.Request,
			SignerName:        capiv1.KubeAPIServerClientSignerName,
			Usages:            usages,
			ExpirationSeconds: input.ExpirationSeconds,
		},
	}
	if errs := validation.ValidateCertificateSigningRequestCreate(csr); len(errs) > 0 {
		return refused("create", errs.ToAggregate().Error())
	}

	// What the csrsigning controller does with an approved request (signer.handle and signer.sign).
	request, err := certificates.ParseCSR(input.Request)
	if err != nil {
		return refused("sign", err.Error())
	}
	der, err := ca.Sign(request.Raw, authority.PermissiveSigningPolicy{
		TTL:      signingTTL(input.ExpirationSeconds),
		Usages:   v1Usages,
		Backdate: backdate,
		Short:    shortLived,
	})
	if err != nil {
		return refused("sign", err.Error())
	}
	certificate, err := x509.ParseCertificate(der)
	if err != nil {
		return refused("sign", fmt.Sprintf("the issued certificate does not parse: %v", err))
	}

	// The apiserver's x509 authenticator, given the certificate as a TLS client would present it.
	response, ok, err := authenticator.AuthenticateRequest(&http.Request{
		TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certificate}},
	})
	if err != nil {
		return refused("authenticate", err.Error())
	}
	if !ok {
		return refused("authenticate", "the certificate authenticates no user (empty CN)")
	}
	groups := response.User.GetGroups()
	if groups == nil {
		groups = []string{}
	}
	return probeOutput{Accepted: true, User: response.User.GetName(), Groups: groups}
}

// signingTTL is signer.duration: the requested lifetime, at most the signing duration, at least 10 minutes.
func signingTTL(expirationSeconds *int32) time.Duration {
	if expirationSeconds == nil {
		return signingDuration
	}
	requested := time.Duration(*expirationSeconds) * time.Second
	return min(max(requested, 10*time.Minute), signingDuration)
}

func throwawayCA() (*authority.CertificateAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "csrprobe throwaway CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	certificate, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	return &authority.CertificateAuthority{Certificate: certificate, PrivateKey: key}, nil
}
