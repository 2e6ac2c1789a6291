package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/janusbridge/janusbridge/bridge"
)

// Bridge is a bridge as GET /api/v1/bridges[/{name}] shows it (SPEC §7).
type Bridge struct {
	bridge.Status
	// ICERestarts and Renegotiations are the bridge's counters.
	ICERestarts    uint64  `json:"ice_restarts"`
	Renegotiations uint64  `json:"renegotiations"`
	Tracks         []Track `json:"tracks"`
	Sinks          []Sink  `json:"sinks"`
}

// Track is one track of a bridge, with its bitrate over the last sample
// period.
type Track struct {
	Feed       string `json:"feed,omitempty"`
	MID        string `json:"mid"`
	Kind       string `json:"kind"`
	Codec      string `json:"codec"`
	Direction  string `json:"direction"`
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`
	Lost       uint64 `json:"lost"`
	NACKs      uint64 `json:"nacks"`
	PLIs       uint64 `json:"plis"`
	BitrateBPS uint64 `json:"bitrate_bps"`
	// History is the bitrate (bit/s) of the last sample periods, oldest
	// first; only on GET /api/v1/bridges/{name}?history=1.
	History []uint64 `json:"history,omitempty"`

	key string // the history's key
}

// Sink is one sink of a bridge.
type Sink struct {
	Feed string `json:"feed,omitempty"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Path is a file sink's current file; URL an rtp or rtmp sink's
	// destination (an RTMP stream key redacted).
	Path      string `json:"path,omitempty"`
	URL       string `json:"url,omitempty"`
	State     string `json:"state"`
	Bytes     uint64 `json:"bytes"`
	Errors    uint64 `json:"errors"`
	Dropped   uint64 `json:"dropped"`
	Files     int    `json:"files,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Ready is the body of GET /readyz.
type Ready struct {
	Ready bool `json:"ready"`
	// Janus is "connected" or "disconnected".
	Janus string `json:"janus"`
	// NotReady are the bridges that are not up, waiting or done.
	NotReady []NotReady `json:"not_ready,omitempty"`
}

// NotReady names a bridge that keeps the daemon from being ready.
type NotReady struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// view builds the API's view of b.
func (s *Server) view(b *bridge.Bridge, withHistory bool) Bridge {
	st := b.Stats()
	v := Bridge{Status: b.Status(), ICERestarts: st.ICERestarts, Renegotiations: st.Renegotiations,
		Tracks: []Track{}, Sinks: []Sink{}}
	for _, t := range st.Tracks {
		k := trackKey(v.Name, t.Feed, t.Index)
		tr := Track{Feed: t.Feed, MID: t.MID, Kind: t.Kind, Codec: t.Codec, Direction: t.Direction, Packets: t.Packets, Bytes: t.Bytes,
			Lost: t.Lost, NACKs: t.NACKs, PLIs: t.PLIs, key: k}
		tr.BitrateBPS, tr.History = s.history.get(k, withHistory)
		v.Tracks = append(v.Tracks, tr)
	}
	cfg := b.Config()
	for _, sn := range st.Sinks {
		out := Sink{Feed: sn.Feed, Name: sn.Name, Type: sn.Type, State: "ok", Bytes: sn.Bytes, Errors: sn.Errors, Dropped: sn.Dropped}
		if f := sn.File; f != nil {
			out.Path, out.State, out.Files, out.LastError = f.Path, f.State, f.Files, f.LastError
		}
		if rs := sn.RTMP; rs != nil {
			out.URL, out.State, out.LastError = rs.URL, rs.State, rs.LastError
		}
		for _, sc := range cfg.Sinks {
			if sc.Name != sn.Name {
				continue
			}
			switch {
			case out.URL != "":
			case sc.URL != "":
				out.URL = redactURL(sc.URL)
			case sc.Host != "":
				out.URL = "rtp://" + sc.Host + ":" + strconv.Itoa(sc.Port)
			}
		}
		v.Sinks = append(v.Sinks, out)
	}
	return v
}

// redactURL hides an RTMP URL's stream key (the last path element) and any
// password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	if i := len(u.Path) - 1; i > 0 {
		for i > 0 && u.Path[i] != '/' {
			i--
		}
		u.Path = u.Path[:i+1] + "REDACTED"
	}
	u.RawQuery = ""
	return u.String()
}

// ready reports whether every bridge is up, waiting or done and Janus is
// connected.
func (s *Server) ready() Ready {
	d := s.opts.Daemon
	r := Ready{Ready: true, Janus: "connected"}
	if !d.JanusConnected() {
		r.Ready, r.Janus = false, "disconnected"
	}
	for _, b := range d.Bridges() {
		st := b.Status()
		switch st.State {
		case bridge.StateUp, bridge.StateWaiting, bridge.StateDone:
			continue
		}
		r.Ready = false
		r.NotReady = append(r.NotReady, NotReady{Name: st.Name, State: st.State, LastError: st.LastError})
	}
	return r
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	r := s.ready()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

func (s *Server) listBridges(w http.ResponseWriter, r *http.Request) {
	out := []Bridge{}
	hist := r.URL.Query().Get("history") == "1"
	for _, b := range s.opts.Daemon.Bridges() {
		out = append(out, s.view(b, hist))
	}
	writeJSON(w, http.StatusOK, out)
}

// bridgeOf returns the bridge named in the path, or answers 404.
func (s *Server) bridgeOf(w http.ResponseWriter, r *http.Request) *bridge.Bridge {
	name := r.PathValue("name")
	b := s.opts.Daemon.Bridge(name)
	if b == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no bridge %q", name))
	}
	return b
}

func (s *Server) getBridge(w http.ResponseWriter, r *http.Request) {
	if b := s.bridgeOf(w, r); b != nil {
		writeJSON(w, http.StatusOK, s.view(b, r.URL.Query().Get("history") == "1"))
	}
}

func (s *Server) iceRestart(w http.ResponseWriter, r *http.Request) {
	b := s.bridgeOf(w, r)
	if b == nil {
		return
	}
	if err := b.RestartICE(r.Context()); err != nil {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "ICE restart requested"})
}

func (s *Server) tracks(w http.ResponseWriter, r *http.Request) {
	b := s.bridgeOf(w, r)
	if b == nil {
		return
	}
	var c bridge.TrackChange
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("track change: %w", err))
		return
	}
	if err := b.ChangeTracks(r.Context(), c); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, bridge.ErrNotRunning) {
			code = http.StatusConflict
		}
		s.fail(w, r, code, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(s.opts.Daemon.Bridge(b.Name()), false))
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	s.startStop(w, r, s.opts.Daemon.StopBridge)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	s.startStop(w, r, s.opts.Daemon.StartBridge)
}

func (s *Server) startStop(w http.ResponseWriter, r *http.Request, op func(string) error) {
	b := s.bridgeOf(w, r)
	if b == nil {
		return
	}
	if err := op(b.Name()); err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, bridge.ErrUnknownBridge):
			code = http.StatusNotFound
		case errors.Is(err, bridge.ErrNotConnected):
			code = http.StatusConflict
		}
		s.fail(w, r, code, err)
		return
	}
	if b = s.opts.Daemon.Bridge(b.Name()); b == nil { // a reload removed it meanwhile
		writeError(w, http.StatusNotFound, fmt.Errorf("no bridge %q", r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, s.view(b, false))
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reload == nil {
		writeError(w, http.StatusNotImplemented, errors.New("reload is not available"))
		return
	}
	res, err := s.opts.Reload()
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// fail logs a failed action and answers it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	s.log.Warn("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, code, err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
