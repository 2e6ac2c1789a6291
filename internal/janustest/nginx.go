package janustest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxRTMPModule is where Debian's libnginx-mod-rtmp puts the module.
const nginxRTMPModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// Nginx is an nginx with the RTMP module, started by StartNginx for one
// test: one server on a free port of 127.0.0.1 with a live application
// "live" (publish and play).
type Nginx struct {
	t    testing.TB
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNginx writes a minimal nginx.conf into a new directory of
// t.TempDir() (the RTMP module, daemon off, one process, pid and logs in
// that directory) and starts nginx; it returns once the RTMP port takes
// connections. nginx is stopped in t.Cleanup, and its error log is logged
// when the test failed. It skips (fails in CI) when nginx or the module
// is missing; it needs no network namespace.
func StartNginx(t testing.TB) *Nginx {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			unusable(t, "nginx not installed (Debian: nginx-light libnginx-mod-rtmp)")
		}
	}
	if _, err := os.Stat(nginxRTMPModule); err != nil {
		unusable(t, "nginx RTMP module not installed (Debian: libnginx-mod-rtmp)")
	}
	dir := t.TempDir()
	n := &Nginx{t: t, dir: dir, port: FreePort(t)}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log info;
events { worker_connections 64; }
rtmp {
	server {
		listen 127.0.0.1:%d;
		application live { live on; }
	}
}
`, nginxRTMPModule, dir, dir, n.port)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatalf("janustest: StartNginx: %v", err)
	}
	n.Start()
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("janustest: nginx error.log:\n%s", b)
		}
	})
	return n
}

// Port is the RTMP port.
func (n *Nginx) Port() int { return n.port }

// URL returns rtmp://127.0.0.1:PORT/live/key.
func (n *Nginx) URL(key string) string {
	return "rtmp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) + "/live/" + key
}

// Start starts nginx (again, after Stop) on the same port and waits until
// the port takes connections.
func (n *Nginx) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return
	}
	bin := "/usr/sbin/nginx"
	if p, err := exec.LookPath("nginx"); err == nil {
		bin = p
	}
	cmd := externalCommand(bin, "-c", filepath.Join(n.dir, "nginx.conf"), "-p", n.dir, "-e", filepath.Join(n.dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := os.Create(filepath.Join(n.dir, "stderr")); err == nil {
		cmd.Stdout, cmd.Stderr = out, out
		defer out.Close()
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("janustest: nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() // ends with nginx; Stop waits for it
	n.cmd, n.done = cmd, done
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(n.dir, "stderr"))
			n.t.Fatalf("janustest: nginx exited at start: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("janustest: nginx does not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the port with a deadline
	}
}

// Stop stops nginx (SIGKILL: a crash, connections cut) and waits for it.
// Stopping a stopped nginx does nothing.
func (n *Nginx) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.done
	n.cmd, n.done = nil, nil
}
