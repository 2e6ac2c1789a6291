package sinks

import (
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// procFD reports whether /proc/self/fd is there: an unprivileged process
// names an unnamed file through it.
var procFD = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/fd")
	return err == nil
})

// createUnnamed creates a file in dir that has no name yet (O_TMPFILE); nil
// when the file system or the process can't, and the file must be created
// by name.
func createUnnamed(dir string) *os.File {
	if !procFD() {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), dir)
}

// linkUnnamed gives f, made by createUnnamed, the name path. It fails with
// an error matching fs.ErrExist when path exists.
func linkUnnamed(f *os.File, path string) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	err = raw.Control(func(fd uintptr) {
		// Through /proc: linkat's AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH.
		lerr = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(fd)), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	})
	if err != nil {
		return err
	}
	if lerr != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: lerr}
	}
	return nil
}
