//go:build !linux

package sinks

import (
	"errors"
	"os"
)

// createUnnamed returns nil: files are created by name.
func createUnnamed(string) *os.File { return nil }

// linkUnnamed is never called: createUnnamed makes no file.
func linkUnnamed(*os.File, string) error { return errors.ErrUnsupported }
