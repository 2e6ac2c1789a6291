package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// Run runs every bridge of cfg on one Janus session until ctx ends, then
// stops them within the configured shutdown_timeout: files finalised,
// handles detached, the session destroyed. It is Start, then Close when ctx
// ends (or when Janus refuses the credentials).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	d, err := Start(cfg, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-d.Failed():
	}
	return errors.Join(err, d.Close())
}

// ErrNotConnected is returned by StopBridge and StartBridge before the
// daemon's first connection to Janus: the bridges start once it is made.
var ErrNotConnected = errors.New("not connected to Janus yet")

// ErrUnknownBridge is returned for a bridge name the configuration does not
// have.
var ErrUnknownBridge = errors.New("no such bridge")

// Daemon owns the Janus session of a configuration and runs its bridges on
// it. Single bridges can be stopped, started again and replaced (Reload)
// while the others run untouched, on the same session and handles. Its
// methods are safe for concurrent use.
type Daemon struct {
	log *slog.Logger
	env *Env

	// The first connection runs in the background, so that the daemon (and
	// its control API) is up while no Janus server answers yet.
	cancel    context.CancelFunc // ends the connection attempts (Close)
	connectWG sync.WaitGroup
	failed    chan error // Janus refused the credentials

	reconnects atomic.Uint64 // transport reconnections (claimed or re-created)
	eventsWG   sync.WaitGroup

	// ops serialises the operations that start or stop bridges (StopBridge,
	// StartBridge, Reload, Close); mu guards the fields below, held only
	// briefly so that readers never wait for a bridge to stop.
	ops     sync.Mutex
	mu      sync.Mutex
	session *janus.Session // nil until connected
	cfg     *config.Config
	bridges []*slot // in configuration order
	closed  bool
}

// slot is one configured bridge and its current run.
type slot struct {
	b *Bridge
	// cfg is the configuration applied to the bridge: b's own, or a newer
	// one whose source changes were made live (Reload).
	cfg *config.Bridge
	// refs are cfg's source tracks after a live source change; nil: as the
	// source started.
	refs   []trackRef
	cancel context.CancelFunc
	done   chan struct{} // closed when b.Run has returned; nil before the first connection
}

// running reports whether the slot's bridge is still running.
func (s *slot) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Start checks that this build can run every bridge of cfg and returns a
// daemon whose bridges start as soon as a Janus server answers: the
// connection is tried in the background, with backoff, until it succeeds,
// Close is called, or Janus refuses the credentials (Failed). Close stops
// everything.
func Start(cfg *config.Config, log *slog.Logger) (*Daemon, error) {
	if err := supportedAll(cfg); err != nil {
		return nil, err
	}
	wo := WebRTCOptions(cfg.WebRTC)
	wo.Logger = log.With("component", "pion")
	wo.Feedback = &janus.FeedbackCounter{}
	api, err := janus.NewAPI(wo)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d := &Daemon{
		log: log,
		env: &Env{API: api, ICEServers: wo.ICEServers, Logger: log,
			OwnFeeds: &OwnFeeds{}, Feedback: wo.Feedback, link: &linkState{}},
		cfg:    cfg,
		failed: make(chan error, 1),
	}
	d.env.link.lostAt.Store(time.Now().UnixNano()) // not connected yet
	if d.bridges, err = d.pendingSlots(cfg); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.connectWG.Add(1)
	go d.connectFirst(ctx)
	return d, nil
}

// pendingSlots makes the bridges of cfg, not started.
func (d *Daemon) pendingSlots(cfg *config.Config) ([]*slot, error) {
	slots := make([]*slot, 0, len(cfg.Bridges))
	for i := range cfg.Bridges {
		b, err := New(&cfg.Bridges[i], d.env)
		if err != nil {
			return nil, fmt.Errorf("daemon: bridge %q: %w", cfg.Bridges[i].Name, err)
		}
		slots = append(slots, &slot{b: b, cfg: &cfg.Bridges[i]})
	}
	return slots, nil
}

// connectFirst makes the first connection to Janus, then starts the
// bridges.
func (d *Daemon) connectFirst(ctx context.Context) {
	defer d.connectWG.Done()
	d.mu.Lock()
	cfg := d.cfg // the [janus] section does not change on reload
	d.mu.Unlock()
	session, err := connect(ctx, cfg, d.log)
	if err != nil {
		if ctx.Err() == nil {
			d.failed <- fmt.Errorf("daemon: connecting to Janus: %w", err)
		}
		return
	}
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		session.Close(cctx)
		cancel()
		return
	}
	// The bridges read Env.Session once they run (Status once Run has
	// begun): set before any starts.
	d.session, d.env.Session = session, session
	d.env.link.lostAt.Store(0)
	for _, s := range d.bridges {
		d.runSlot(s)
	}
	d.eventsWG.Add(1)
	go d.watchSession()
	d.log.Info("janusbridge running", "bridges", len(d.bridges), "server", session.Server(), "session", session.ID())
}

// Failed delivers the error that keeps the daemon from ever connecting:
// Janus refused its credentials.
func (d *Daemon) Failed() <-chan error { return d.failed }

// supportedAll says whether this build can run every bridge of cfg.
func supportedAll(cfg *config.Config) error {
	var errs []error
	for i := range cfg.Bridges {
		if err := Supported(&cfg.Bridges[i]); err != nil {
			errs = append(errs, fmt.Errorf("bridge[%d] %q: %w", i, cfg.Bridges[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// watchSession follows the session's connection: the bridges' reported
// state while the transport is lost, and the reconnection count.
func (d *Daemon) watchSession() {
	defer d.eventsWG.Done()
	for ev := range d.session.Events() {
		switch ev.Kind {
		case janus.Disconnected:
			d.env.link.lostAt.Store(time.Now().UnixNano())
			d.log.Warn("janus session disconnected", "server", ev.Server, "session", ev.SessionID, "err", ev.Err)
		default:
			d.reconnects.Add(1)
			d.env.link.lostAt.Store(0)
			d.log.Info("janus session "+ev.Kind.String(), "server", ev.Server, "session", ev.SessionID)
		}
	}
}

// startBridge creates and runs the bridge of cfg. d.mu is held.
func (d *Daemon) startBridge(cfg *config.Bridge) (*slot, error) {
	b, err := New(cfg, d.env)
	if err != nil {
		return nil, fmt.Errorf("daemon: bridge %q: %w", cfg.Name, err)
	}
	s := &slot{b: b, cfg: cfg}
	d.runSlot(s)
	return s, nil
}

// runSlot runs the slot's bridge. d.mu is held.
func (d *Daemon) runSlot(s *slot) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.b.Run(ctx); err != nil {
			s.b.log.Error("bridge ended", "err", err)
		}
	}()
}

// stopSlots stops the bridges of slots at once and waits until they have
// finalised their outputs, at most timeout. It returns the names of those
// still running then.
func stopSlots(slots []*slot, timeout time.Duration) []string {
	var run []*slot
	for _, s := range slots {
		if s.done != nil {
			s.cancel()
			run = append(run, s)
		}
	}
	slots = run
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var late []string
	for _, s := range slots {
		select {
		case <-s.done:
		case <-deadline.C:
			deadline.Reset(0) // expired: the rest are only checked
			late = append(late, s.b.Name())
		}
	}
	return late
}

func (d *Daemon) shutdownTimeout() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Duration(d.cfg.Defaults.ShutdownTimeout)
}

// Close stops every bridge within the configured shutdown_timeout (files
// finalised, handles detached), then destroys the Janus session. It returns
// an error naming the bridges that did not stop in time.
func (d *Daemon) Close() error {
	d.cancel()
	d.connectWG.Wait()
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	slots := d.bridges
	session := d.session
	timeout := time.Duration(d.cfg.Defaults.ShutdownTimeout)
	d.mu.Unlock()
	if session == nil { // never connected: nothing runs
		return nil
	}

	d.log.Info("stopping", "timeout", timeout)
	deadline := time.Now().Add(timeout)
	var err error
	if late := stopSlots(slots, timeout); len(late) > 0 {
		err = fmt.Errorf("daemon: bridges %q did not stop within shutdown_timeout %v", late, timeout)
	}
	if time.Until(deadline) < time.Second {
		deadline = time.Now().Add(time.Second) // room to say goodbye to Janus
	}
	closeCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if cerr := session.Close(closeCtx); cerr != nil {
		d.log.Warn("closing the Janus session", "err", cerr)
	}
	d.eventsWG.Wait()
	return err
}

// Bridges returns the configured bridges in configuration order, running or
// not.
func (d *Daemon) Bridges() []*Bridge {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*Bridge, len(d.bridges))
	for i, s := range d.bridges {
		out[i] = s.b
	}
	return out
}

// Bridge returns the bridge called name, or nil.
func (d *Daemon) Bridge(name string) *Bridge {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.slotLocked(name); s != nil {
		return s.b
	}
	return nil
}

func (d *Daemon) slotLocked(name string) *slot {
	for _, s := range d.bridges {
		if s.b.Name() == name {
			return s
		}
	}
	return nil
}

// JanusConnected reports whether the session's transport is up.
func (d *Daemon) JanusConnected() bool { return d.env.link.lostAt.Load() == 0 }

// JanusServer returns the Janus server in use, "" before the first
// connection.
func (d *Daemon) JanusServer() string {
	d.mu.Lock()
	s := d.session
	d.mu.Unlock()
	if s == nil {
		return ""
	}
	return s.Server()
}

// JanusStats returns the session's counters of bad and unrouted messages
// from Janus; zero before the first connection.
func (d *Daemon) JanusStats() janus.SessionStats {
	d.mu.Lock()
	s := d.session
	d.mu.Unlock()
	if s == nil {
		return janus.SessionStats{}
	}
	return s.Stats()
}

// JanusReconnects counts the session's reconnections (claimed or
// re-created) since Start.
func (d *Daemon) JanusReconnects() uint64 { return d.reconnects.Load() }

// StopBridge stops the bridge called name and waits until it has finalised
// its outputs (at most shutdown_timeout). The bridge stays listed, in state
// stopped, until StartBridge or a Reload. Stopping a stopped bridge does
// nothing.
func (d *Daemon) StopBridge(name string) error {
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	s := d.slotLocked(name)
	closed, connected := d.closed, d.session != nil
	d.mu.Unlock()
	if s == nil || closed {
		return fmt.Errorf("daemon: stop %q: %w", name, ErrUnknownBridge)
	}
	if !connected {
		return fmt.Errorf("daemon: stop %q: %w", name, ErrNotConnected)
	}
	if late := stopSlots([]*slot{s}, d.shutdownTimeout()); len(late) > 0 {
		return fmt.Errorf("daemon: bridge %q did not stop within shutdown_timeout", name)
	}
	return nil
}

// StartBridge starts the bridge called name again after StopBridge (or after
// it ended by itself), as a new run of its configuration. Starting a running
// bridge does nothing.
func (d *Daemon) StartBridge(name string) error {
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.slotLocked(name)
	if s == nil || d.closed {
		return fmt.Errorf("daemon: start %q: %w", name, ErrUnknownBridge)
	}
	if d.session == nil {
		return fmt.Errorf("daemon: start %q: %w", name, ErrNotConnected)
	}
	if s.running() {
		return nil
	}
	ns, err := d.startBridge(s.cfg)
	if err != nil {
		return err
	}
	*s = *ns
	return nil
}

// ReloadResult says what a Reload did, by bridge name.
type ReloadResult struct {
	// Unchanged bridges kept running untouched (same handle).
	Unchanged []string `json:"unchanged"`
	// Added bridges were started.
	Added []string `json:"added"`
	// Removed bridges were stopped.
	Removed []string `json:"removed"`
	// Restarted bridges had a changed configuration: stopped, then started
	// with the new one. Stopped bridges whose configuration did not change
	// are started again too (the file is re-applied).
	Restarted []string `json:"restarted"`
	// Renegotiated bridges had only their RTP source's tracks changed,
	// applied live (tracks added, removed or replaced; same handle).
	Renegotiated []string `json:"renegotiated"`
}

// Reload applies a new configuration: bridges whose configuration is
// unchanged keep running untouched; removed ones are stopped cleanly; added
// ones are started; changed ones are restarted with their new
// configuration. The [janus], [webrtc] and [control] sections cannot change
// on a reload (the session and the listener would go): a cfg that changes
// them, or that has a bridge this build cannot run, is refused whole and
// the running bridges are left alone.
func (d *Daemon) Reload(cfg *config.Config) (ReloadResult, error) {
	var res ReloadResult
	d.ops.Lock()
	defer d.ops.Unlock()
	d.mu.Lock()
	old := d.cfg
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return res, errors.New("daemon: reload: stopping")
	}
	if err := fixedSections(old, cfg); err != nil {
		return res, fmt.Errorf("reload refused: %w", err)
	}
	if err := supportedAll(cfg); err != nil {
		return res, fmt.Errorf("reload refused: %w", err)
	}
	d.mu.Lock()
	connected := d.session != nil
	d.mu.Unlock()
	if !connected {
		return d.reloadPending(cfg)
	}

	d.mu.Lock()
	current := map[string]*slot{}
	for _, s := range d.bridges {
		current[s.b.Name()] = s
	}
	d.mu.Unlock()
	// Source changes first, live where possible; then stop what goes away
	// or changes otherwise, all at once; then start.
	var stop []*slot
	keep := map[string]bool{}
	live := map[string]bool{}
	for i := range cfg.Bridges {
		nb := &cfg.Bridges[i]
		s, ok := current[nb.Name]
		if !ok {
			continue
		}
		keep[nb.Name] = true
		if reflect.DeepEqual(s.cfg, nb) {
			continue
		}
		if d.changeSource(s, nb) {
			live[nb.Name] = true
			continue
		}
		stop = append(stop, s)
	}
	for _, s := range d.Bridges() {
		if !keep[s.Name()] {
			stop = append(stop, current[s.Name()])
			res.Removed = append(res.Removed, s.Name())
		}
	}
	timeout := time.Duration(cfg.Defaults.ShutdownTimeout)
	if late := stopSlots(stop, timeout); len(late) > 0 {
		d.log.Warn("reload: bridges did not stop within shutdown_timeout", "bridges", late)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	var slots []*slot
	var errs []error
	for i := range cfg.Bridges {
		nb := &cfg.Bridges[i]
		s, ok := current[nb.Name]
		switch {
		case ok && live[nb.Name]:
			res.Renegotiated = append(res.Renegotiated, nb.Name)
			s.cfg = nb
			slots = append(slots, s)
			continue
		case ok && reflect.DeepEqual(s.cfg, nb) && s.running():
			res.Unchanged = append(res.Unchanged, nb.Name)
			slots = append(slots, s)
			continue
		case ok:
			res.Restarted = append(res.Restarted, nb.Name)
		default:
			res.Added = append(res.Added, nb.Name)
		}
		ns, err := d.startBridge(nb)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		slots = append(slots, ns)
	}
	d.bridges, d.cfg = slots, cfg
	d.log.Info("configuration reloaded", "unchanged", res.Unchanged, "added", res.Added,
		"removed", res.Removed, "restarted", res.Restarted, "renegotiated", res.Renegotiated)
	return res, errors.Join(errs...)
}

// changeSource applies a new configuration nb of the running send bridge
// of s live, when only its RTP source's track list changed: a track whose
// codec stays gets its new source (replace, no renegotiation), a new track
// is added, a track gone is removed (both renegotiated). It reports false,
// having changed nothing, when that cannot be done: another key changed,
// the source is not an RTP track list, the tracks were changed through
// the API since (a reload re-applies the file), a new track listens where
// an old one does (both would hold the port), or a Streaming mountpoint
// would need a new stream. A change that fails half-way is logged and
// reported false: the bridge is then restarted on nb.
func (d *Daemon) changeSource(s *slot, nb *config.Bridge) bool {
	old := s.cfg
	a, b := *old, *nb
	a.Source, b.Source = nil, nil
	if !reflect.DeepEqual(a, b) || old.Source == nil || nb.Source == nil || !s.running() {
		return false
	}
	oldSrc, newSrc := *old.Source, *nb.Source
	oldSrc.Tracks, newSrc.Tracks = nil, nil
	if !reflect.DeepEqual(oldSrc, newSrc) || oldSrc.Type != config.SourceRTP || oldSrc.SDP != "" {
		return false
	}
	tx := s.b.tx.Load()
	if tx == nil {
		return false
	}
	oldTracks, newTracks := old.Source.Tracks, nb.Source.Tracks
	refs, ok := tx.fileTracks(s.refs, len(oldTracks))
	if !ok {
		return false
	}
	listening := map[string]bool{}
	for _, t := range oldTracks {
		listening[t.Listen] = true
	}
	type step struct {
		c  TrackChange
		at int // the new configuration's track it makes, -1 for a removal
	}
	var replaces, adds, removes []step
	for i := range max(len(oldTracks), len(newTracks)) {
		switch {
		case i >= len(newTracks):
			removes = append(removes, step{TrackChange{Action: TrackRemove, MID: refs[i].mid}, -1})
			continue
		case i < len(oldTracks) && reflect.DeepEqual(oldTracks[i], newTracks[i]):
			continue
		}
		nt := newTracks[i]
		if listening[nt.Listen] {
			return false
		}
		spec := &TrackSpec{Kind: nt.Kind, Codec: nt.Codec, Listen: nt.Listen, PayloadType: uint8(nt.PayloadType)}
		if i < len(oldTracks) && oldTracks[i].Kind == nt.Kind && oldTracks[i].Codec == nt.Codec {
			replaces = append(replaces, step{TrackChange{Action: TrackReplace, MID: refs[i].mid, Track: spec}, i})
			continue
		}
		adds = append(adds, step{TrackChange{Action: TrackAdd, Track: spec}, i})
		if i < len(oldTracks) {
			removes = append(removes, step{TrackChange{Action: TrackRemove, MID: refs[i].mid}, -1})
		}
	}
	if nb.Plugin == config.PluginStreaming && len(adds)+len(removes) > 0 {
		return false
	}
	newRefs := make([]trackRef, len(newTracks))
	copy(newRefs, refs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Adds before removes: a bridge never drops to no track.
	for _, st := range append(append(replaces, adds...), removes...) {
		tx.mu.Lock()
		n := len(tx.tracks)
		tx.mu.Unlock()
		if err := s.b.ChangeTracks(ctx, st.c); err != nil {
			s.b.log.Warn("reload: live source change failed, restarting the bridge", "action", st.c.Action, "mid", st.c.MID, "err", err)
			return false
		}
		if st.at < 0 {
			continue
		}
		var t *sendTrack
		if st.c.Action == TrackAdd {
			tx.mu.Lock()
			t = tx.tracks[n] // the track the add made
			tx.mu.Unlock()
		} else {
			t = refs[st.at].t // replaced: same track, new input
		}
		t.mu.Lock()
		newRefs[st.at] = trackRef{t: t, owner: t.owner}
		t.mu.Unlock()
	}
	s.refs = newRefs
	s.b.log.Info("reload: source changed live", "replaced", len(replaces), "added", len(adds), "removed", len(removes))
	return true
}

// trackRef is one configured source track of a running send bridge: its
// outgoing track and the input feeding it, as a reload left them.
type trackRef struct {
	t     *sendTrack
	owner *input
	mid   string // filled by fileTracks
}

// fileTracks returns the configured source's n tracks when the running
// send bridge's tracks are still those the configuration made (nothing
// changed through the API since): refs as the last live reload left them,
// or, when refs is nil, the tracks the source started with. Each must be
// negotiated (have a mid).
func (tx *send) fileTracks(refs []trackRef, n int) ([]trackRef, bool) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if refs == nil {
		if len(tx.tracks) != n {
			return nil, false
		}
		for i, t := range tx.tracks {
			t.mu.Lock()
			refs = append(refs, trackRef{t: t, owner: t.owner})
			t.mu.Unlock()
			if refs[i].owner != refs[0].owner {
				return nil, false
			}
		}
	}
	if len(refs) != n || n == 0 {
		return nil, false
	}
	out := make([]trackRef, n)
	mine := map[*sendTrack]bool{}
	for i, r := range refs {
		r.t.mu.Lock()
		owner, removed, mid := r.t.owner, r.t.removed, r.t.mid
		r.t.mu.Unlock()
		if removed || mid == "" || owner == nil || owner != r.owner {
			return nil, false
		}
		out[i] = trackRef{t: r.t, owner: owner, mid: mid}
		mine[r.t] = true
	}
	for _, t := range tx.tracks { // a track added through the API
		t.mu.Lock()
		removed := t.removed
		t.mu.Unlock()
		if !removed && !mine[t] {
			return nil, false
		}
	}
	return out, true
}

// reloadPending applies cfg before the first connection: nothing runs yet,
// so the bridges are simply replaced.
func (d *Daemon) reloadPending(cfg *config.Config) (ReloadResult, error) {
	var res ReloadResult
	slots, err := d.pendingSlots(cfg)
	if err != nil {
		return res, fmt.Errorf("reload refused: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := map[string]*config.Bridge{}
	for _, s := range d.bridges {
		old[s.b.Name()] = s.cfg
	}
	for _, s := range slots {
		name := s.b.Name()
		switch oc, ok := old[name]; {
		case !ok:
			res.Added = append(res.Added, name)
		case reflect.DeepEqual(oc, s.cfg):
			res.Unchanged = append(res.Unchanged, name)
		default:
			res.Restarted = append(res.Restarted, name)
		}
		delete(old, name)
	}
	for _, s := range d.bridges {
		if _, gone := old[s.b.Name()]; gone {
			res.Removed = append(res.Removed, s.b.Name())
		}
	}
	d.bridges, d.cfg = slots, cfg
	d.log.Info("configuration reloaded before connecting to Janus", "bridges", len(slots))
	return res, nil
}

// fixedSections refuses a change of the sections a reload cannot apply.
func fixedSections(old, cfg *config.Config) error {
	var errs []error
	if !reflect.DeepEqual(old.Janus, cfg.Janus) {
		errs = append(errs, errors.New("[janus] changed: restart janusbridge to apply it"))
	}
	if !reflect.DeepEqual(old.WebRTC, cfg.WebRTC) {
		errs = append(errs, errors.New("[webrtc] changed: restart janusbridge to apply it"))
	}
	if !reflect.DeepEqual(old.Control, cfg.Control) {
		errs = append(errs, errors.New("[control] changed: restart janusbridge to apply it"))
	}
	return errors.Join(errs...)
}

// linkState is the Janus session's connection as the bridges report it.
type linkState struct {
	// lostAt is when the transport was lost (Unix ns), 0 while connected.
	lostAt atomic.Int64
}

// connect creates the daemon's session, retrying with backoff while no
// server answers, until ctx ends. Wrong credentials end it at once.
func connect(ctx context.Context, cfg *config.Config, log *slog.Logger) (*janus.Session, error) {
	opts := SessionOptions(cfg)
	opts.Logger = log.With("component", "janus")
	wait := opts.ReconnectMin
	for {
		s, err := janus.Connect(ctx, opts)
		if err == nil {
			return s, nil
		}
		if errors.Is(err, janus.ErrUnauthorized) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("no Janus server answers, retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, opts.ReconnectMax)
	}
}

// SessionOptions maps the [janus] section to the client's options.
func SessionOptions(cfg *config.Config) janus.Options {
	j := cfg.Janus
	return janus.Options{
		Servers:        j.Servers,
		APISecret:      j.APISecret,
		Token:          j.Token,
		RequestTimeout: time.Duration(j.RequestTimeout),
		KeepAlive:      time.Duration(j.Keepalive),
		ReconnectMin:   time.Duration(j.ReconnectMin),
		ReconnectMax:   time.Duration(j.ReconnectMax),
	}
}

// WebRTCOptions maps the [webrtc] section to the pion settings.
func WebRTCOptions(w config.WebRTC) janus.WebRTCOptions {
	o := janus.WebRTCOptions{
		UDPPortMin:             uint16(w.UDPPortMin),
		UDPPortMax:             uint16(w.UDPPortMax),
		NAT1To1IPs:             w.NAT1To1IPs,
		Interfaces:             w.Interfaces,
		LoopbackCandidates:     w.LoopbackCandidates,
		ICEDisconnectedTimeout: time.Duration(w.ICEDisconnectedTimeout),
		ICEFailedTimeout:       time.Duration(w.ICEFailedTimeout),
	}
	for _, s := range w.ICEServers {
		o.ICEServers = append(o.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return o
}
