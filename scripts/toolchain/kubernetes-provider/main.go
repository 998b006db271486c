// Command pulumi-resource-kubernetes is Slipway's own entry point for the
// Pulumi Kubernetes resource provider.
//
// The upstream command embeds files produced by a generate step that are not
// part of the published Go module, so scripts/toolchain.sh copies the schema
// and the mapping from the provider module (in the module cache) next to this
// file in a scratch build directory before running `go build`.
package main

import (
	_ "embed"
	"encoding/json"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema.json
var rawSchema []byte

//go:embed terraform-mapping.json
var rawMapping []byte

// stampVersion returns the schema with its top-level "version" set, which is
// what the upstream generate step does at build time.
func stampVersion(schema []byte, v string) []byte {
	if v == "" {
		return schema
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(schema, &doc); err != nil {
		return schema
	}
	quoted, err := json.Marshal(v)
	if err != nil {
		return schema
	}
	doc["version"] = quoted
	out, err := json.Marshal(doc)
	if err != nil {
		return schema
	}
	return out
}

func main() {
	provider.Serve("kubernetes", version.Version, stampVersion(rawSchema, version.Version), rawMapping)
}
