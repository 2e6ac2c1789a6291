package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error line names the
// file, and that a config Parse accepts passes Validate again.
func FuzzParse(f *testing.F) {
	for _, tc := range confErrorCases {
		f.Add([]byte(tc.conf))
		f.Add([]byte(tc.conf + janusSection))
	}
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(example)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.toml:") {
					t.Fatalf("error line without the file name: %q", line)
				}
			}
			return
		}
		c.Warnings()
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate after Parse: %v", err)
		}
	})
}
