package main

// The cluster's secrets, generated at first start under the state directory and reused after:
// a CA, the API server's certificate for 127.0.0.1/localhost, the service-account signing key
// and the static bearer tokens. Everything is written with mode 0600.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Static token users. Apollo and kubectl are cluster admins (system:masters); the controller
// manager and the scheduler use the user names the RBAC bootstrap policy grants their roles to.
var tokenUsers = []struct{ name, user, groups string }{
	{"apollo", "apollo", "system:masters"},
	{"kubectl", "kubectl-admin", "system:masters"},
	{"controller-manager", "system:kube-controller-manager", ""},
	{"scheduler", "system:kube-scheduler", ""},
	{"nodes", "apollo-simulated-nodes", "system:masters"},
	// Bound to the built-in view ClusterRole at start (up.go): kubesim's limited token.
	{"viewer", "apollo-viewer", ""},
}

type pki struct {
	dir    string
	caPEM  []byte
	tokens map[string]string
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func writeSecret(path string, data []byte) error {
	return os.WriteFile(path, data, 0o600)
}

func ensurePKI(dir string) (pki, error) {
	p := pki{dir: dir, tokens: map[string]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, err
	}
	if !exists(p.path("ca.crt")) {
		if err := generateCertificates(p); err != nil {
			return p, fmt.Errorf("generating certificates: %w", err)
		}
	}
	if !exists(p.path("sa.key")) {
		if err := generateServiceAccountKey(p); err != nil {
			return p, fmt.Errorf("generating the service-account key: %w", err)
		}
	}
	if err := generateTokens(p); err != nil {
		return p, fmt.Errorf("generating tokens: %w", err)
	}
	var err error
	if p.caPEM, err = os.ReadFile(p.path("ca.crt")); err != nil {
		return p, err
	}
	return p, readTokens(&p)
}

func generateCertificates(p pki) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "apollo-kubernetes-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.crt": {Type: "CERTIFICATE", Bytes: serverDER},
	} {
		if err := writeSecret(p.path(name), pem.EncodeToMemory(block)); err != nil {
			return err
		}
	}
	for name, key := range map[string]*ecdsa.PrivateKey{"ca.key": caKey, "server.key": serverKey} {
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writeSecret(p.path(name), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
			return err
		}
	}
	return nil
}

func generateServiceAccountKey(p pki) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	public, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	private := x509.MarshalPKCS1PrivateKey(key)
	if err := writeSecret(p.path("sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: private})); err != nil {
		return err
	}
	return writeSecret(p.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public}))
}

func randomToken() (string, error) {
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}

// tokens.csv is kube-apiserver's --token-auth-file: token,user,uid,"group1,group2". Users missing
// from it (a state directory of an older version) are added.
func generateTokens(p pki) error {
	known := map[string]bool{}
	existing, err := os.ReadFile(p.path("tokens.csv"))
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(existing)), "\n") {
		if fields := strings.SplitN(line, ",", 4); len(fields) >= 3 {
			known[fields[2]] = true
		}
	}
	var lines []string
	if len(existing) > 0 {
		lines = append(lines, strings.TrimSpace(string(existing)))
	}
	added := false
	for _, u := range tokenUsers {
		if known[u.name] {
			continue
		}
		added = true
		token, err := randomToken()
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s,%s,%s,%q", token, u.user, u.name, u.groups))
	}
	if !added {
		return nil
	}
	return writeSecret(p.path("tokens.csv"), []byte(strings.Join(lines, "\n")+"\n"))
}

func readTokens(p *pki) error {
	data, err := os.ReadFile(p.path("tokens.csv"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		fields := strings.SplitN(line, ",", 4)
		if len(fields) < 3 {
			return fmt.Errorf("%s: malformed line", p.path("tokens.csv"))
		}
		p.tokens[fields[2]] = fields[0]
	}
	for _, u := range tokenUsers {
		if p.tokens[u.name] == "" {
			return errors.New(p.path("tokens.csv") + ": missing the token of " + u.name)
		}
	}
	return nil
}
