package sinks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/media"
)

// h264AccessUnits encodes secs seconds of testsrc2 at size and 25 fps with
// x264 (an access unit delimiter before each picture, a keyframe every
// second) and returns the access units.
func h264AccessUnits(t *testing.T, size string, secs int) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.h264")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size="+size+":rate=25",
		"-t", fmt.Sprint(secs), "-c:v", "libx264", "-profile:v", "baseline", "-x264-params", "aud=1:keyint=25",
		"-f", "h264", path).CombinedOutput()
	if err != nil {
		t.Fatalf("encoding: %v: %s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	start := -1
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 1 && b[i+4]&0x1f == media.H264NALAUD {
			if start >= 0 {
				aus = append(aus, b[start:i])
			}
			start = i
		}
	}
	return append(aus, b[start:])
}

// tlsProxy accepts TLS on a free port with a certificate for 127.0.0.1 and
// forwards each connection to target; it returns its address and a client
// configuration that trusts it.
func tlsProxy(t *testing.T, target string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.Close() }() // ends when either side closes
				io.Copy(c, s)
			})
		}
	})
	return ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// TestRTMPSinkParamSetChange publishes H.264 over rtmps (a TLS proxy in
// front of nginx-rtmp) whose parameter sets change mid-stream (320x240,
// then 160x120): the sink sends a new sequence header, and a player that
// recorded the stream decodes both parts cleanly at their sizes.
func TestRTMPSinkParamSetChange(t *testing.T) {
	janustest.RequirePrograms(t, "ffmpeg", "ffprobe")
	ng := janustest.StartNginx(t)
	proxy, tlsCfg := tlsProxy(t, fmt.Sprintf("127.0.0.1:%d", ng.Port()))
	aus := append(h264AccessUnits(t, "320x240", 2), h264AccessUnits(t, "160x120", 2)...)

	// A player waits for the stream (nginx keeps it until a publisher comes).
	rec := filepath.Join(t.TempDir(), "rec.flv")
	player := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-rw_timeout", "3000000", "-i", ng.URL("k"), "-c", "copy", "-y", rec)
	var perr strings.Builder
	player.Stderr = &perr
	if err := player.Start(); err != nil {
		t.Fatal(err)
	}
	s, err := NewRTMP(RTMPConfig{Name: "tls", URL: "rtmps://" + proxy + "/live/k", TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTracks([]media.Track{{Index: 0, MID: "v", Kind: "video", Codec: media.H264, ClockRate: 90000}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Status().State != RTMPPublishing {
		if time.Now().After(deadline) {
			t.Fatalf("not publishing: %+v", s.Status())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	start := time.Now()
	for i, au := range aus {
		time.Sleep(time.Until(start.Add(time.Duration(i) * 40 * time.Millisecond))) // real-time pacing of the feed
		if err := s.WriteFrame(&media.Frame{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, Keyframe: media.H264HasIDR(au), Data: au}); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Status()
	s.Close()
	if err := player.Wait(); err != nil {
		t.Fatalf("player: %v: %s", err, perr.String())
	}
	t.Logf("sink %+v", st)
	if st.Dropped != 0 || st.Errors != 0 || st.Connects != 1 {
		t.Errorf("status %+v", st)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height", "-of", "csv=p=0", rec).Output()
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int{}
	for _, l := range strings.Fields(string(out)) {
		sizes[strings.TrimSuffix(l, ",")]++
	}
	// The player gets the stream from a keyframe, maybe not the first.
	t.Logf("decoded frames by size: %v", sizes)
	if sizes["320,240"] < 20 || sizes["160,120"] < 45 {
		t.Errorf("frames by size %v, want 20 to 50 of 320x240, then 50 of 160x120", sizes)
	}
	if dec, _ := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", rec, "-f", "null", "-").CombinedOutput(); len(dec) > 0 {
		t.Errorf("decode errors: %s", dec)
	}
}
