package janustest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// NamespaceAddr is the address that scripts/netns.sh puts on the veth v0 inside the test
// namespace. Janus offers it as its host candidate; an interface carrying it is how [Require]
// recognises the namespace.
const NamespaceAddr = "127.0.0.2"

// UDP port ranges kept apart so that parallel tests and components do not collide:
// FreeUDPPorts hands out ports in [udpPortMin, udpPortMax] (feeds into Streaming mountpoints),
// Janus's own media ports default to DefaultRTPPortRange, and 40000-40999 is left to the bridge.
const (
	udpPortMin = 20000
	udpPortMax = 29998
)

// InCI reports whether the tests run in CI (environment variable CI set to a true value, as
// `.ci/run` does). In CI a missing part of the environment fails a test instead of skipping it.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Require skips the test (or, when CI=true, fails it) unless the environment can run Janus
// integration tests: running as root, inside the test network namespace (an interface has
// 127.0.0.2) and with the janus and ffmpeg binaries installed.
func Require(t testing.TB) {
	t.Helper()
	if msg := envProblem(); msg != "" {
		unusable(t, "%s", msg)
	}
}

// RequireTools is [Require] plus the given programs (e.g. "nginx", "chromium", "ffprobe"): each
// must be found in PATH, else the test skips (fails when CI=true).
func RequireTools(t testing.TB, programs ...string) {
	t.Helper()
	Require(t)
	RequirePrograms(t, programs...)
}

// RequirePrograms skips the test (fails it when CI=true) unless every program (e.g. "ffmpeg",
// "ffprobe", "nginx") is found in PATH. Unlike [RequireTools] it does not need the test
// namespace: it is for tests that run such programs without Janus.
func RequirePrograms(t testing.TB, programs ...string) {
	t.Helper()
	var missing []string
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		unusable(t, "program(s) not installed: %s (run `make deps` as root)", strings.Join(missing, ", "))
	}
}

// envProblem says what makes this environment unusable, or "" when it is usable.
func envProblem() string {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not running as root")
	}
	if ok, err := inNamespace(); err != nil {
		problems = append(problems, fmt.Sprintf("cannot list interface addresses: %v", err))
	} else if !ok {
		problems = append(problems, "not inside the test network namespace (no interface has "+NamespaceAddr+")")
	}
	for _, p := range []string{"janus", "ffmpeg"} {
		if _, err := exec.LookPath(p); err != nil {
			problems = append(problems, p+" not installed")
		}
	}
	if len(problems) == 0 {
		return ""
	}
	return strings.Join(problems, "; ") +
		" — run `make test` as root, or `scripts/netns.sh exec go test ./...` (see TESTING.md)"
}

// inNamespace reports whether an interface of this network namespace carries NamespaceAddr.
func inNamespace() (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	want := net.ParseIP(NamespaceAddr)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(want) {
			return true, nil
		}
	}
	return false, nil
}

// unusable skips the test, or fails it when running in CI.
func unusable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("janustest: environment unusable and CI=true (a skip would hide it): %s", msg)
		return
	}
	t.Skipf("janustest: skipping, environment unusable: %s", msg)
}

var (
	portsMu   sync.Mutex
	portsHeld = map[string]*os.File{} // "tcp/N", "udp/N": reserved by this process, lock held
)

// portLockDir holds one lock file per port handed out by FreePort and FreeUDPPorts. CI runs
// the packages' test binaries in parallel in one network namespace: a port that is free when
// one process asks may be handed to another before the first one's Janus binds it. A port is
// only handed out while its file is flock'ed, and the lock is held until the process exits, so
// no two test processes (nor two tests of one process) get the same port.
var portLockDir = filepath.Join(os.TempDir(), "janustest-ports")

// reservePort takes port key ("udp/N" or "tcp/N") for this process: false when this process
// or another one holds it already. The lock goes with the process (the kernel releases it when
// the process ends, however it ends).
func reservePort(key string) (bool, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	if portsHeld[key] != nil {
		return false, nil
	}
	if err := os.MkdirAll(portLockDir, 0o777); err != nil {
		return false, fmt.Errorf("port lock directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(portLockDir, strings.ReplaceAll(key, "/", "-")+".lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return false, fmt.Errorf("port lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil // another process's
		}
		return false, fmt.Errorf("port lock %s: %w", f.Name(), err)
	}
	portsHeld[key] = f
	return true, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free when asked and that no other test
// (of this process or of another test binary running at the same time) has been handed. It
// fails the test if none is found.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("janustest: FreePort: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		fresh, err := reservePort("tcp/" + strconv.Itoa(port))
		if err != nil {
			t.Fatalf("janustest: FreePort: %v", err)
		}
		if fresh {
			return port
		}
	}
	t.Fatalf("janustest: FreePort: no fresh port after 50 tries")
	return 0
}

// FreeUDPPorts returns n distinct even UDP ports, each free together with its odd neighbour (the
// RTCP port by convention) on all interfaces when asked, for RTP feeds into Streaming mountpoints.
// They come from 20000-29999, away from Janus's own media ports (DefaultRTPPortRange), the
// kernel's ephemeral ports and the bridge's 40000-40999. A port is never handed out twice, not
// even to test binaries running in parallel (a lock file per port, see portLockDir). It fails
// the test if too few are free.
func FreeUDPPorts(t testing.TB, n int) []int {
	t.Helper()
	const span = (udpPortMax-udpPortMin)/2 + 1
	start := rand.IntN(span)
	var ports []int
	for i := 0; i < span && len(ports) < n; i++ {
		p := udpPortMin + 2*((start+i)%span)
		if !udpFree(p) || !udpFree(p+1) {
			continue
		}
		fresh, err := reservePort("udp/" + strconv.Itoa(p))
		if err != nil {
			t.Fatalf("janustest: FreeUDPPorts: %v", err)
		}
		if fresh {
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		t.Fatalf("janustest: FreeUDPPorts: found %d of %d free ports in %d-%d", len(ports), n, udpPortMin, udpPortMax+1)
	}
	return ports
}

func udpFree(port int) bool {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// errNotRunning is returned for operations that need a running process.
var errNotRunning = errors.New("process not running")

// externalCommand returns the command that runs bin with args at a higher CPU priority than the
// code under test (nice -10) when the tests run as root. Janus, nginx and the ffmpeg feeds stand
// for servers and cameras on machines of their own: on a loaded test machine (CI runs the packages in
// parallel on 2 cores) they must not be starved, or their late packets would be blamed on the
// bridge. nice execs bin, so the process id is bin's.
func externalCommand(bin string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		if nice, err := exec.LookPath("nice"); err == nil {
			return exec.Command(nice, append([]string{"-n", "-10", bin}, args...)...)
		}
	}
	return exec.Command(bin, args...)
}
