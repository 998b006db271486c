package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func env(pairs map[string]string) func(string) string {
	return func(k string) string { return pairs[k] }
}

func TestDefaults(t *testing.T) {
	c, err := loadConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Slot != "blue" || c.FaultErrorRatio != 0 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestFlagOverridesEnvAndErrorsNameTheSource(t *testing.T) {
	c, err := loadConfig([]string{"--slot=green", "--port", "9000"}, env(map[string]string{"SLOT": "red", "PORT": "x"}), io.Discard)
	if err != nil || c.Port != 9000 || c.Slot != "green" {
		t.Fatalf("got %+v, %v", c, err)
	}
	_, err = loadConfig(nil, env(map[string]string{"SLOT": "red", "FAULT_ERROR_RATIO": "1.5"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `SLOT="red"`) || !strings.Contains(err.Error(), "FAULT_ERROR_RATIO") {
		t.Fatalf("got %v", err)
	}
}

func TestDecimals(t *testing.T) {
	for _, v := range []string{"0", "1", "0.5", ".5", "1.", "1.0"} {
		if _, err := loadConfig(nil, env(map[string]string{"FAULT_ERROR_RATIO": v}), io.Discard); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{".", "-0.1", "1e0", "inf", "NaN", "0x1p-1"} {
		if _, err := loadConfig(nil, env(map[string]string{"FAULT_ERROR_RATIO": v}), io.Discard); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestSplitmixMatchesTheRustService(t *testing.T) {
	if got := fmt.Sprintf("%016x", splitmixChain(1000)); got != "a17ac4d60a6b3f89" {
		t.Fatalf("got %s", got)
	}
}
