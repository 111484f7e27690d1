package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type kubeContext struct{ name, token, namespace string }

// writeKubeconfig writes a kubeconfig (mode 0600) with one user per context; the first context
// is the current one. Written to a temporary file and renamed, so a reader never sees half.
func writeKubeconfig(path, server string, caPEM []byte, contexts []kubeContext) error {
	var b strings.Builder
	ca := base64.StdEncoding.EncodeToString(caPEM)
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n")
	fmt.Fprintf(&b, "    server: %s\n    certificate-authority-data: %s\n", server, ca)
	b.WriteString("users:\n")
	for _, c := range contexts {
		fmt.Fprintf(&b, "- name: %s\n  user:\n    token: %s\n", c.name, c.token)
	}
	b.WriteString("contexts:\n")
	for _, c := range contexts {
		fmt.Fprintf(&b, "- name: %s\n  context:\n    cluster: kubernetes\n    user: %s\n", c.name, c.name)
		if c.namespace != "" {
			fmt.Fprintf(&b, "    namespace: %s\n", c.namespace)
		}
	}
	fmt.Fprintf(&b, "current-context: %s\n", contexts[0].name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
