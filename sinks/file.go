package sinks

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
)

// Tunables of File.
const (
	// fileBufferSize is the write buffer in front of each file: the muxers
	// gather what they write until a flush themselves, and bufio passes
	// writes larger than its buffer straight through, so a small one (16
	// KiB of each stream's memory, not 64) serves the small writes.
	fileBufferSize = 16 << 10
	// fileFlushEvery is how often (in media time or wall time, whichever
	// comes first) the muxer and the buffer are flushed to the file, so
	// that a SIGKILL loses at most this much.
	fileFlushEvery = 500 * time.Millisecond
	// keyframeRequestEvery rate-limits RequestKeyframe while waiting.
	keyframeRequestEvery = time.Second
	// spaceCheckEvery is how often free space is checked against MinFree.
	spaceCheckEvery = 10 * time.Second
	// retryMin and retryMax bound the backoff after a failed file.
	retryMin = time.Second
	retryMax = 30 * time.Second
	// defaultCloseWait is how long Close waits for on_close commands.
	defaultCloseWait = 10 * time.Second
	// maxSanitized is the longest a placeholder value gets in a path.
	maxSanitized = 64
)

// States of a File, as FileStatus.State reports them.
const (
	// FileIdle means no track for this sink yet (or an audio-only sink waiting
	// for its first frame).
	FileIdle = "idle"
	// FileWaitingKeyframe means a file (or the next segment) starts at the next
	// video keyframe; keyframes are being requested.
	FileWaitingKeyframe = "waiting-keyframe"
	// FileWriting means a file is open and being written.
	FileWriting = "writing"
	// FileFailed means the last file failed (see LastError); the next one opens
	// after a backoff, at a keyframe.
	FileFailed = "failed"
	// FilePausedMinFree means free space is below MinFree; writing resumes when
	// it is back.
	FilePausedMinFree = "paused-min-free"
	// FileClosed means Close was called.
	FileClosed = "closed"
)

// muxerFunc starts a muxer for tracks on w.
type muxerFunc func(w io.WriteSeeker, tracks []media.Track) (muxer, error)

// muxerFor returns the muxer constructor of a file sink type, nil when the
// type has none.
func muxerFor(typ string) muxerFunc {
	switch typ {
	case config.SinkOgg:
		return newOgg
	case config.SinkWebM:
		return func(w io.WriteSeeker, tracks []media.Track) (muxer, error) { return newMatroska(w, tracks, "webm") }
	case config.SinkMKV:
		return func(w io.WriteSeeker, tracks []media.Track) (muxer, error) { return newMatroska(w, tracks, "matroska") }
	case config.SinkMP4:
		return newMP4
	default:
		return nil
	}
}

// FileConfig configures a File: one [[bridge.sink]] of type webm, mkv, ogg
// or mp4, for one publisher of a bridge.
type FileConfig struct {
	// Type is the container: "webm", "mkv", "ogg" or "mp4".
	Type string
	// Name names the sink in logs, sidecars, metrics and the API.
	Name string
	// Template is the path template (SPEC §4): {bridge}, {room},
	// {mountpoint}, {feed}, {display}, {start}, {seq}.
	Template string
	// Segment starts a new file at the first keyframe after this long; 0 = one file.
	Segment time.Duration
	// Kinds selects "audio" and/or "video"; empty = every track the container can hold.
	Kinds []string
	// OnClose is run (not waited for) when a file is finalised; "{path}" in
	// any argument is replaced by the file's path.
	OnClose []string
	// CloseWait is how long Close waits for on_close commands still
	// running before it kills them; 0 means 10 s.
	CloseWait time.Duration
	// Keep removes this sink's finalised files older than this; 0 = keep them.
	Keep time.Duration
	// MaxTotalSize removes this sink's oldest finalised files while they
	// add up to more than this many bytes; 0 = no limit.
	MaxTotalSize uint64
	// MinFree pauses writing while the file system has less than this many
	// bytes free; 0 = no check.
	MinFree uint64

	// Bridge, Room, Mountpoint, Feed and Display fill the template's
	// placeholders (reduced to [A-Za-z0-9._-], at most 64 bytes) and the
	// sidecar (as they are). Room and Mountpoint are "" when the bridge has none.
	Bridge     string
	Room       string
	Mountpoint string
	Feed       string
	Display    string

	// RequestKeyframe asks the bridge for a keyframe (PLI/FIR). It is
	// called from WriteFrame and SetTracks, at most once a second while a
	// file waits for a keyframe, and must neither block nor call back into
	// the File. nil = no requests.
	RequestKeyframe func()
	// Logger receives the sink's log lines; nil = discard.
	Logger *slog.Logger
	// Now is the clock; nil = time.Now. Tests set it.
	Now func() time.Time

	// newMuxer overrides the muxer of Type (tests).
	newMuxer muxerFunc
	// freeSpace overrides the free-space probe (tests).
	freeSpace func(dir string) (uint64, error)
}

// NewFileConfig returns the FileConfig of a file sink of a bridge, from the
// configuration. The caller sets Feed and Display (the publisher's, for
// VideoRoom bridges), RequestKeyframe and Logger.
func NewFileConfig(b *config.Bridge, s *config.Sink) FileConfig {
	fc := FileConfig{
		Type:         s.Type,
		Name:         s.Name,
		Template:     s.Path,
		Segment:      time.Duration(s.Segment),
		Kinds:        s.Kinds,
		OnClose:      s.OnClose,
		Keep:         time.Duration(s.Keep),
		MaxTotalSize: uint64(s.MaxTotalSize),
		MinFree:      uint64(s.MinFree),
		Bridge:       b.Name,
	}
	if b.Room.IsSet() {
		fc.Room = b.Room.String()
	}
	if b.Mountpoint.IsSet() {
		fc.Mountpoint = b.Mountpoint.String()
	}
	return fc
}

// FileStatus is a File's state for the control API and the metrics.
type FileStatus struct {
	// Path is the file being written, "" when none.
	Path string `json:"path"`
	// Files counts the files finalised so far.
	Files int `json:"files"`
	// Bytes counts the bytes written, all files together.
	Bytes uint64 `json:"bytes"`
	// Errors counts failed files, pauses for lack of space and other write errors.
	Errors uint64 `json:"errors"`
	// LastError is the latest error, "" when none.
	LastError string `json:"last_error,omitempty"`
	// State is one of the File* state constants.
	State string `json:"state"`
}

// File is a file sink (webm, mkv, ogg, mp4): it writes the frames of the
// tracks it takes to files named by a template, starting each file at a
// keyframe, rotating segments, finalising files (sidecar, on_close,
// retention) in the background, and recovering by itself from write errors.
// WriteFrame and SetTracks come from one goroutine; Status may be called
// from any.
type File struct {
	cfg       FileConfig
	log       *slog.Logger
	now       func() time.Time
	newMuxer  muxerFunc
	freeSpace func(dir string) (uint64, error)

	mu             sync.Mutex
	closed         bool
	tracks         []media.Track // the tracks this sink takes
	video          bool          // tracks include video: files start at a keyframe
	state          string
	cur            *fileSegment
	seq            int
	files          int
	bytes          uint64 // bytes of the files no longer open
	errors         uint64
	lastErr        string
	backoff        time.Duration
	retryAt        time.Time
	lastKeyRequest time.Time
	early          []*media.Frame // audio that came while waiting for a keyframe
	lastSpaceCheck time.Time
	pending        []*fileSegment // closed files waiting for finalise

	wake      chan struct{} // a file was queued for finalise
	quit      chan struct{} // closed by Close: the finaliser drains and exits
	finaliser sync.WaitGroup

	cmdMu sync.Mutex
	cmds  map[*exec.Cmd]bool // running on_close commands
	cmdWG sync.WaitGroup
}

var _ media.FrameSink = (*File)(nil)

// fileSegment is one open file.
type fileSegment struct {
	// path is the file's name, "" until it has one: a file is created
	// without a name where the system allows (O_TMPFILE) and named after
	// the first bytes reach it, so a crash never leaves an empty file.
	path     string
	want     string // the name it asks for (path may add "-1", "-2"...)
	dir      string
	file     *os.File
	out      *bufferedFile
	mux      muxer
	tracks   []media.Track
	start    time.Time     // wall clock of the first frame
	firstPTS time.Duration // bridge PTS of the first frame: the file's 0
	lastPTS  time.Duration // largest file PTS written
	started  []int         // video tracks that had their first keyframe

	frames     int // frames written
	flushedPTS time.Duration
	flushedAt  time.Time
	flushed    bool // something reached the file
	failed     error

	barrier chan struct{} // not a file: closed when the finaliser reaches it (tests)
}

// NewFile returns a file sink. Nothing is opened until the first frame it
// can start a file with; Close must be called to release it.
func NewFile(cfg FileConfig) (*File, error) {
	if cfg.Template == "" {
		return nil, fmt.Errorf("%s sink %q: no path template", cfg.Type, cfg.Name)
	}
	for _, k := range cfg.Kinds {
		if k != "audio" && k != "video" {
			return nil, fmt.Errorf("%s sink %q: unknown kind %q", cfg.Type, cfg.Name, k)
		}
	}
	s := &File{
		cfg:       cfg,
		log:       cfg.Logger,
		now:       cfg.Now,
		newMuxer:  cfg.newMuxer,
		freeSpace: cfg.freeSpace,
		state:     FileIdle,
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		cmds:      map[*exec.Cmd]bool{},
	}
	if s.newMuxer == nil {
		s.newMuxer = muxerFor(cfg.Type)
		if s.newMuxer == nil {
			return nil, fmt.Errorf("%s sink %q: no file writer for type %q", cfg.Type, cfg.Name, cfg.Type)
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", cfg.Name, "type", cfg.Type)
	if s.now == nil {
		s.now = time.Now
	}
	if s.freeSpace == nil {
		s.freeSpace = statfsFree
	}
	s.finaliser.Add(1)
	go s.finaliseLoop()
	return s, nil
}

// SetTracks tells the sink the bridge's tracks. It keeps those it takes
// (Kinds, else every track its container can hold); a track of a kind asked
// for explicitly that the container cannot hold is an error, and then
// nothing changes. When the kept set differs from the current file's, the
// file is finalised and the next one starts with the new set.
func (s *File) SetTracks(tracks []media.Track) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s sink %q: closed", s.cfg.Type, s.cfg.Name)
	}
	sel, err := s.filter(tracks)
	if err != nil {
		return err
	}
	if sameTracks(sel, s.tracks) {
		return nil
	}
	s.early = nil
	s.tracks = sel
	s.video = slices.ContainsFunc(sel, func(t media.Track) bool { return t.Kind == "video" })
	now := s.now()
	if s.cur != nil {
		s.log.Info("track set changed: new segment", "path", s.cur.path)
		if err := s.finish(nil); err != nil {
			s.fail(err, now)
		}
	}
	if s.state == FileFailed || s.state == FilePausedMinFree {
		return nil
	}
	s.state = FileIdle
	if s.video {
		s.state = FileWaitingKeyframe
		s.lastKeyRequest = time.Time{}
		s.requestKeyframe(now)
	}
	if len(sel) == 0 && len(tracks) > 0 {
		s.log.Info("no track for this sink", "tracks", len(tracks))
	}
	return nil
}

// filter returns the tracks of the bridge this sink takes.
func (s *File) filter(tracks []media.Track) ([]media.Track, error) {
	var sel []media.Track
	var errs []error
	for _, t := range tracks {
		if t.Kind == "" {
			t.Kind = media.KindOf(t.Codec)
		}
		explicit := slices.Contains(s.cfg.Kinds, t.Kind)
		if len(s.cfg.Kinds) > 0 && !explicit {
			continue
		}
		if !media.SinkAccepts(s.cfg.Type, t.Codec) {
			if explicit {
				errs = append(errs, fmt.Errorf("%s sink %q: a %s file cannot hold %s (%s track, mid %q); %s takes %s",
					s.cfg.Type, s.cfg.Name, s.cfg.Type, t.Codec, t.Kind, t.MID, s.cfg.Type,
					strings.Join(media.SinkCodecs(s.cfg.Type), ", ")))
			}
			continue
		}
		sel = append(sel, t)
	}
	return sel, errors.Join(errs...)
}

// sameTracks reports whether two track sets would make the same file.
func sameTracks(a, b []media.Track) bool {
	return slices.EqualFunc(a, b, func(x, y media.Track) bool {
		return x.Index == y.Index && x.MID == y.MID && x.Kind == y.Kind && x.Codec == y.Codec &&
			x.ClockRate == y.ClockRate && x.Channels == y.Channels && x.Fmtp == y.Fmtp
	})
}

// WriteFrame writes a frame of one of the sink's tracks (others are
// ignored). It opens the file (at a video keyframe when the sink has
// video), rotates segments, and flushes the file twice a second. It returns
// an error only when this frame made the current file fail; the sink then
// drops frames until it retries, with backoff, at a keyframe. f belongs to
// the sink after the call (its PTS is rebased).
func (s *File) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s sink %q: closed", s.cfg.Type, s.cfg.Name)
	}
	t := s.track(f.Track)
	if t == nil {
		return nil
	}
	now := s.now()
	if s.cfg.MinFree > 0 && (s.cur != nil || s.state == FilePausedMinFree) && now.Sub(s.lastSpaceCheck) >= spaceCheckEvery {
		s.checkSpace(now)
	}
	switch s.state {
	case FilePausedMinFree:
		return nil
	case FileFailed:
		if now.Before(s.retryAt) {
			return nil
		}
		s.state = FileIdle
		if s.video {
			s.state = FileWaitingKeyframe
		}
		s.lastKeyRequest = time.Time{}
	}
	canStart := !s.video || t.Kind == "video" && f.Keyframe
	if c := s.cur; c != nil && s.cfg.Segment > 0 && f.PTS-c.firstPTS >= s.cfg.Segment {
		if canStart {
			if err := s.finish(nil); err != nil {
				s.fail(err, now)
				return s.wrap(err)
			}
		} else {
			s.requestKeyframe(now)
		}
	}
	if s.cur == nil {
		if !canStart {
			s.state = FileWaitingKeyframe
			s.requestKeyframe(now)
			s.keepEarly(f)
			return nil
		}
		if err := s.open(f, now); err != nil {
			s.fail(err, now)
			return s.wrap(err)
		}
		if s.cur == nil { // paused for lack of space
			return nil
		}
		if err := s.write(f, t, now); err != nil {
			return err
		}
		return s.writeEarly(f.PTS, now)
	}
	return s.write(f, t, now)
}

// earlyWindow bounds the audio kept while a file waits for its first video
// keyframe: the tracks' frames need not arrive in PTS order across tracks
// (each is released when its own track is placed on the timeline), so audio
// stamped after the keyframe may come before it.
const (
	earlyWindow = 2 * time.Second
	earlyMax    = 256
)

// keepEarly keeps a non-video frame that came while the file waits for a
// keyframe, dropping what is older than earlyWindow before it.
func (s *File) keepEarly(f *media.Frame) {
	if t := s.track(f.Track); t == nil || t.Kind == "video" {
		return
	}
	i := 0
	for i < len(s.early) && (f.PTS-s.early[i].PTS > earlyWindow || len(s.early)-i >= earlyMax) {
		i++
	}
	s.early = append(s.early[i:], f)
}

// writeEarly writes the kept frames stamped at or after the file's start.
func (s *File) writeEarly(start time.Duration, now time.Time) error {
	early := s.early
	s.early = nil
	for _, f := range early {
		if f.PTS < start || s.cur == nil {
			continue
		}
		if err := s.write(f, s.track(f.Track), now); err != nil {
			return err
		}
	}
	return nil
}

// track returns the sink's track of a frame, nil when it takes none.
func (s *File) track(index int) *media.Track {
	for i := range s.tracks {
		if s.tracks[i].Index == index {
			return &s.tracks[i]
		}
	}
	return nil
}

// requestKeyframe asks for a keyframe, at most once per keyframeRequestEvery.
func (s *File) requestKeyframe(now time.Time) {
	if s.cfg.RequestKeyframe == nil || !s.video {
		return
	}
	if !s.lastKeyRequest.IsZero() && now.Sub(s.lastKeyRequest) < keyframeRequestEvery {
		return
	}
	s.lastKeyRequest = now
	s.cfg.RequestKeyframe()
}

// open starts a file with frame f. It leaves s.cur nil when free space is
// below MinFree.
func (s *File) open(f *media.Frame, now time.Time) error {
	start := f.Wall
	if start.IsZero() {
		start = now
	}
	path := expandTemplate(s.cfg, start, s.seq)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	if s.cfg.MinFree > 0 && !s.spaceOK(now, dir) {
		return nil
	}
	want, named := path, ""
	file := createUnnamed(dir)
	if file == nil {
		var err error
		if file, named, err = createNew(want); err != nil {
			return err
		}
	}
	out := &bufferedFile{f: file, w: bufio.NewWriterSize(file, fileBufferSize)}
	mux, err := newGuarded(s.newMuxer, out, s.tracks)
	if err != nil {
		file.Close()
		if named != "" {
			os.Remove(named)
		}
		return fmt.Errorf("start %s: %w", want, err)
	}
	s.seq++
	s.cur = &fileSegment{
		path:     named,
		want:     want,
		dir:      dir,
		file:     file,
		out:      out,
		mux:      mux,
		tracks:   slices.Clone(s.tracks),
		start:    start,
		firstPTS: f.PTS,
	}
	s.state = FileWriting
	if named != "" {
		s.log.Info("file opened", "path", named)
	}
	return nil
}

// name gives the current file its name once something reached it (see
// fileSegment.path).
func (s *File) name(c *fileSegment) error {
	if c.path != "" || c.out.size == 0 {
		return nil
	}
	path, err := claimName(c.want, func(p string) error { return linkUnnamed(c.file, p) })
	if err != nil {
		return fmt.Errorf("name the file %s: %w", c.want, err)
	}
	c.path = path
	s.log.Info("file opened", "path", path)
	return nil
}

// write writes f to the current file, flushing it when due.
func (s *File) write(f *media.Frame, t *media.Track, now time.Time) error {
	c := s.cur
	pts := f.PTS - c.firstPTS
	if pts < 0 {
		return nil // audio slightly before the first video keyframe
	}
	if t.Kind == "video" && !slices.Contains(c.started, t.Index) {
		if !f.Keyframe {
			return nil // a second video track before its first keyframe
		}
		c.started = append(c.started, t.Index)
	}
	f.PTS = pts
	if err := c.mux.WriteFrame(f); err != nil {
		s.fail(err, now)
		return s.wrap(err)
	}
	c.frames++
	c.lastPTS = max(c.lastPTS, pts)
	if c.frames == 1 || pts-c.flushedPTS >= fileFlushEvery || now.Sub(c.flushedAt) >= fileFlushEvery {
		if err := s.flush(c, now); err != nil {
			s.fail(err, now)
			return s.wrap(err)
		}
	}
	return nil
}

// flush pushes the muxer's and the buffer's bytes to the file.
func (s *File) flush(c *fileSegment, now time.Time) error {
	if err := c.mux.Flush(); err != nil {
		return err
	}
	if err := c.out.Flush(); err != nil {
		return err
	}
	if err := s.name(c); err != nil {
		return err
	}
	c.flushedPTS, c.flushedAt, c.flushed = c.lastPTS, now, c.path != ""
	s.backoff = 0 // data reaches the disk again
	return nil
}

// fail records a write error, drops the current file (closing it as well as
// possible) and schedules the retry.
func (s *File) fail(err error, now time.Time) {
	path := ""
	if s.cur != nil {
		path = cmp.Or(s.cur.path, s.cur.want)
		s.finish(err)
	}
	s.errors++
	s.lastErr = err.Error()
	s.backoff = min(max(2*s.backoff, retryMin), retryMax)
	s.retryAt = now.Add(s.backoff)
	s.state = FileFailed
	s.log.Warn("file failed", "path", path, "err", err, "retry_in", s.backoff)
}

// finish closes the current file: the muxer finalises it (or, after a
// failure, tries to) and the rest (fsync, close, sidecar, on_close,
// retention) is left to the finaliser goroutine.
func (s *File) finish(failed error) error {
	c := s.cur
	s.cur = nil
	s.state = FileIdle
	if s.video {
		s.state = FileWaitingKeyframe
	}
	var err error
	if failed == nil {
		err = c.mux.Close()
		if err == nil {
			err = c.out.Flush()
		}
		if err == nil {
			err = s.name(c)
		}
		if err == nil {
			c.flushedPTS, c.flushed = c.lastPTS, c.path != ""
		}
	} else {
		// As well as possible: the file keeps what reached it.
		_ = c.mux.Close()
		_ = c.out.Flush()
	}
	if c.failed = failed; c.failed == nil {
		c.failed = err
	}
	s.bytes += uint64(c.out.size)
	s.pending = append(s.pending, c)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return err
}

// wrap names the sink in an error.
func (s *File) wrap(err error) error {
	return fmt.Errorf("%s sink %q: %w", s.cfg.Type, s.cfg.Name, err)
}

// checkSpace checks free space against MinFree where files go.
func (s *File) checkSpace(now time.Time) {
	dir := templateDir(s.cfg.Template)
	if s.cur != nil {
		dir = s.cur.dir
	}
	s.spaceOK(now, dir)
}

// spaceOK checks free space in dir against MinFree: below it the sink
// finalises its file and pauses (said once); when it is back, writing
// resumes at the next keyframe. An unreadable file system counts as enough.
func (s *File) spaceOK(now time.Time, dir string) bool {
	s.lastSpaceCheck = now
	free, err := s.freeSpace(existingDir(dir))
	if err != nil {
		s.log.Debug("free space unknown", "dir", dir, "err", err)
		return true
	}
	if free >= s.cfg.MinFree {
		if s.state == FilePausedMinFree {
			s.log.Info("free space back: writing resumes", "dir", dir, "free", free)
			s.state = FileIdle
			if s.video {
				s.state = FileWaitingKeyframe
				s.lastKeyRequest = time.Time{}
				s.requestKeyframe(now)
			}
		}
		return true
	}
	if s.state != FilePausedMinFree {
		msg := fmt.Sprintf("free space in %s is %s, below min_free %s: writing paused", dir, config.Size(free), config.Size(s.cfg.MinFree))
		s.errors++
		s.lastErr = msg
		s.log.Warn(msg)
		if s.cur != nil {
			if err := s.finish(nil); err != nil {
				s.log.Warn("finalising file", "err", err)
			}
		}
		s.state = FilePausedMinFree
	}
	return false
}

// Status returns the sink's state, for the control API and the metrics.
func (s *File) Status() FileStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := FileStatus{
		Files:     s.files,
		Bytes:     s.bytes,
		Errors:    s.errors,
		LastError: s.lastErr,
		State:     s.state,
	}
	if s.cur != nil {
		st.Path = s.cur.path
		st.Bytes += uint64(s.cur.out.size)
	}
	return st
}

// Close finalises the current file and waits for the finaliser and, up to
// CloseWait, for on_close commands (then kills them). It is idempotent.
func (s *File) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var err error
	if s.cur != nil {
		if err = s.finish(nil); err != nil {
			s.errors++
			s.lastErr = err.Error()
			err = s.wrap(err)
		}
	}
	s.state = FileClosed
	s.mu.Unlock()

	close(s.quit)
	s.finaliser.Wait()

	done := make(chan struct{})
	go func() {
		s.cmdWG.Wait()
		close(done)
	}()
	wait := s.cfg.CloseWait
	if wait <= 0 {
		wait = defaultCloseWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.cmdMu.Lock()
		for cmd := range s.cmds {
			s.log.Warn("on_close still running at close: killed", "cmd", cmd.Args)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		s.cmdMu.Unlock()
		<-done
	}
	return err
}

// finaliseLoop finalises closed files in the background until Close.
func (s *File) finaliseLoop() {
	defer s.finaliser.Done()
	for {
		s.mu.Lock()
		jobs := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, c := range jobs {
			if c.barrier != nil {
				close(c.barrier)
				continue
			}
			s.finalise(c)
		}
		if len(jobs) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-s.quit:
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n == 0 {
				return
			}
		}
	}
}

// finalise syncs and closes a file, writes its sidecar, runs on_close and
// applies retention. A file that holds nothing (it failed before its first
// flush) is removed.
func (s *File) finalise(c *fileSegment) {
	var errs []error
	if c.failed == nil {
		if err := c.file.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("fsync %s: %w", c.path, err))
		}
	}
	if err := c.file.Close(); err != nil && c.failed == nil {
		errs = append(errs, fmt.Errorf("close %s: %w", c.path, err))
	}
	if !c.flushed {
		if c.path == "" {
			return // never named: it went with its descriptor
		}
		if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("removing empty failed file", "path", c.path, "err", err)
		}
		return
	}
	if err := s.writeSidecar(c); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	s.files++
	if err := errors.Join(errs...); err != nil && c.failed == nil {
		s.errors++ // a failed file's trouble is counted once, when it failed
		s.lastErr = err.Error()
	}
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("finalising file", "path", c.path, "err", err)
	}
	s.log.Info("file finalised", "path", c.path, "bytes", c.out.size, "duration", c.flushedPTS)
	s.runOnClose(c.path)
	s.applyRetention(c.path)
}

// sidecar is the JSON written next to each finalised file (<file>.json),
// so that the files of one room can be aligned later.
type sidecar struct {
	File string `json:"file"`
	// Start is the wall-clock time of the first frame (from RTCP sender
	// reports), End = Start + Duration; RFC 3339 in UTC with milliseconds.
	Start string `json:"start"`
	End   string `json:"end"`
	// Duration is the last frame's PTS, in seconds.
	Duration   float64        `json:"duration"`
	Bridge     string         `json:"bridge"`
	Room       string         `json:"room,omitempty"`
	Mountpoint string         `json:"mountpoint,omitempty"`
	Feed       string         `json:"feed,omitempty"`
	Display    string         `json:"display,omitempty"`
	Sink       string         `json:"sink"`
	Type       string         `json:"type"`
	Bytes      int64          `json:"bytes"`
	Tracks     []sidecarTrack `json:"tracks"`
	// Error says why the file ended early, when it did.
	Error string `json:"error,omitempty"`
}

// sidecarTrack is one track in a sidecar.
type sidecarTrack struct {
	Index     int    `json:"index"`
	MID       string `json:"mid"`
	Kind      string `json:"kind"`
	Codec     string `json:"codec"`
	ClockRate uint32 `json:"clock_rate"`
	Channels  uint16 `json:"channels,omitempty"`
}

const sidecarTime = "2006-01-02T15:04:05.000Z07:00"

// writeSidecar writes <file>.json (through a temporary file and a rename,
// so that retention never reads half of one).
func (s *File) writeSidecar(c *fileSegment) error {
	d := c.flushedPTS
	sc := sidecar{
		File:       filepath.Base(c.path),
		Start:      c.start.UTC().Format(sidecarTime),
		End:        c.start.Add(d).UTC().Format(sidecarTime),
		Duration:   math.Round(d.Seconds()*1000) / 1000,
		Bridge:     s.cfg.Bridge,
		Room:       s.cfg.Room,
		Mountpoint: s.cfg.Mountpoint,
		Feed:       s.cfg.Feed,
		Display:    s.cfg.Display,
		Sink:       s.cfg.Name,
		Type:       s.cfg.Type,
		Bytes:      c.out.size,
		Tracks:     make([]sidecarTrack, len(c.tracks)),
	}
	if c.failed != nil {
		sc.Error = c.failed.Error()
	}
	for i, t := range c.tracks {
		sc.Tracks[i] = sidecarTrack{Index: t.Index, MID: t.MID, Kind: t.Kind, Codec: t.Codec, ClockRate: t.ClockRate, Channels: t.Channels}
	}
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp := c.path + ".json.tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sidecar: %w", err)
	}
	if err := os.Rename(tmp, c.path+".json"); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sidecar: %w", err)
	}
	return nil
}

// runOnClose starts the on_close command for a finalised file; a goroutine
// reaps it and logs a failure.
func (s *File) runOnClose(path string) {
	if len(s.cfg.OnClose) == 0 {
		return
	}
	argv := make([]string, len(s.cfg.OnClose))
	for i, a := range s.cfg.OnClose {
		argv[i] = strings.ReplaceAll(a, "{path}", path)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Close can kill its children too
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.log.Warn("on_close failed", "path", path, "cmd", argv, "err", err)
		return
	}
	s.cmdMu.Lock()
	s.cmds[cmd] = true
	s.cmdMu.Unlock()
	s.cmdWG.Add(1)
	go func() {
		defer s.cmdWG.Done()
		err := cmd.Wait()
		s.cmdMu.Lock()
		delete(s.cmds, cmd)
		s.cmdMu.Unlock()
		if err != nil {
			s.log.Warn("on_close failed", "path", path, "cmd", argv, "err", err, "stderr", stderr.String())
		}
	}()
}

// finalisedFile is a file of this sink that retention may remove.
type finalisedFile struct {
	path  string
	start time.Time
	end   time.Time
	size  int64
}

// applyRetention removes this sink's finalised files (those with a sidecar
// naming this bridge and sink, found with the template's placeholders as
// wildcards), oldest first, while they are older than Keep or add up to more
// than MaxTotalSize. The file just finalised (keep) is never removed: its
// on_close may be reading it.
func (s *File) applyRetention(keep string) {
	if s.cfg.Keep <= 0 && s.cfg.MaxTotalSize == 0 {
		return
	}
	files := s.scanFinalised()
	sort.Slice(files, func(i, j int) bool { return files[i].start.Before(files[j].start) })
	var total uint64
	for _, f := range files {
		total += uint64(f.size)
	}
	now := s.now()
	for _, f := range files {
		if f.path == keep {
			continue
		}
		old := s.cfg.Keep > 0 && now.Sub(f.end) > s.cfg.Keep
		over := s.cfg.MaxTotalSize > 0 && total > s.cfg.MaxTotalSize
		if !old && !over {
			break
		}
		err := errors.Join(os.Remove(f.path), os.Remove(f.path+".json"))
		if err != nil {
			s.log.Warn("retention: removing file", "path", f.path, "err", err)
			continue
		}
		total -= uint64(f.size)
		s.log.Info("retention: file removed", "path", f.path, "old", old, "over_size", over)
	}
}

// scanFinalised lists the finalised files of this sink.
func (s *File) scanFinalised() []finalisedFile {
	pattern := templateGlob(s.cfg)
	ext := filepath.Ext(pattern)
	if strings.ContainsAny(ext, `*?[\`) {
		ext = ""
	}
	base := strings.TrimSuffix(pattern, ext)
	seen := map[string]bool{}
	var out []finalisedFile
	for _, p := range []string{pattern, base + "-*" + ext} {
		matches, err := filepath.Glob(p)
		if err != nil {
			s.log.Warn("retention: bad pattern", "pattern", p, "err", err)
			continue
		}
		for _, m := range matches {
			if seen[m] || strings.HasSuffix(m, ".json") || strings.HasSuffix(m, ".json.tmp") {
				continue
			}
			seen[m] = true
			data, err := os.ReadFile(m + ".json")
			if err != nil {
				continue // not finalised (or not ours)
			}
			var sc sidecar
			if json.Unmarshal(data, &sc) != nil || sc.Bridge != s.cfg.Bridge || sc.Sink != s.cfg.Name {
				continue
			}
			start, err1 := time.Parse(sidecarTime, sc.Start)
			end, err2 := time.Parse(sidecarTime, sc.End)
			fi, err3 := os.Stat(m)
			if err1 != nil || err2 != nil || err3 != nil || !fi.Mode().IsRegular() {
				continue
			}
			out = append(out, finalisedFile{path: m, start: start, end: end, size: fi.Size()})
		}
	}
	return out
}

// expandTemplate fills a path template for a file starting at start with
// segment number seq.
func expandTemplate(cfg FileConfig, start time.Time, seq int) string {
	r := strings.NewReplacer(
		"{bridge}", sanitizeName(cfg.Bridge),
		"{room}", sanitizeName(cfg.Room),
		"{mountpoint}", sanitizeName(cfg.Mountpoint),
		"{feed}", sanitizeName(cfg.Feed),
		"{display}", sanitizeName(cfg.Display),
		"{start}", start.UTC().Format("20060102T150405Z"),
		"{seq}", fmt.Sprintf("%04d", seq),
	)
	return filepath.Clean(r.Replace(cfg.Template))
}

// templateGlob turns a template into a glob pattern matching the files of
// every publisher of the sink: {bridge}, {room}, {mountpoint} filled, the
// other placeholders as wildcards.
func templateGlob(cfg FileConfig) string {
	esc := func(v string) string {
		var b strings.Builder
		for _, r := range v {
			if strings.ContainsRune(`*?[\`, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	var b strings.Builder
	rest := cfg.Template
	for {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(esc(rest))
			break
		}
		b.WriteString(esc(rest[:i]))
		switch ph := rest[i : i+j+1]; ph {
		case "{bridge}":
			b.WriteString(esc(sanitizeName(cfg.Bridge)))
		case "{room}":
			b.WriteString(esc(sanitizeName(cfg.Room)))
		case "{mountpoint}":
			b.WriteString(esc(sanitizeName(cfg.Mountpoint)))
		case "{feed}", "{display}", "{start}", "{seq}":
			b.WriteByte('*')
		default:
			b.WriteString(esc(ph))
		}
		rest = rest[i+j+1:]
	}
	return filepath.Clean(b.String())
}

// templateDir is the fixed directory of a template: the directory of the
// part before its first placeholder.
func templateDir(template string) string {
	if i := strings.IndexByte(template, '{'); i >= 0 {
		template = template[:i]
	}
	return filepath.Dir(template)
}

// existingDir returns dir or its nearest existing parent.
func existingDir(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// sanitizeName reduces a placeholder value to [A-Za-z0-9._-] (every other
// character becomes '_') and at most 64 bytes; a value of dots only (".",
// "..") becomes underscores so it cannot climb directories.
func sanitizeName(v string) string {
	b := make([]byte, 0, min(len(v), maxSanitized))
	dots := true
	for _, r := range v {
		if len(b) == maxSanitized {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			dots = false
		case r == '.':
		default:
			r = '_'
			dots = false
		}
		b = append(b, byte(r))
	}
	if dots {
		for i := range b {
			b[i] = '_'
		}
	}
	return string(b)
}

// createNew creates a file named path, or as claimName names it.
func createNew(path string) (f *os.File, name string, err error) {
	name, err = claimName(path, func(p string) (err error) {
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("create file: %w", err)
	}
	return f, name, nil
}

// claimName calls create with path, or with path with "-1", "-2"... before
// its extension when it (or its sidecar) exists, and returns the name
// create took: a file is never overwritten.
func claimName(path string, create func(string) error) (string, error) {
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	for i := 0; ; i++ {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s-%d%s", base, i, ext)
		}
		if _, err := os.Lstat(p + ".json"); err == nil {
			continue
		}
		err := create(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrExist) || i >= 9999 {
			return "", err
		}
	}
}

// statfsFree returns the bytes available to unprivileged users in dir's
// file system.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// guardedMuxer is a muxer whose panics become errors: a bug in one container
// writer fails that file (and the sink retries), never the daemon.
type guardedMuxer struct{ m muxer }

// newGuarded starts a muxer with fn, guarded.
func newGuarded(fn muxerFunc, w io.WriteSeeker, tracks []media.Track) (m muxer, err error) {
	defer recoverTo(&err)
	m, err = fn(w, tracks)
	if err != nil {
		return nil, err
	}
	return guardedMuxer{m}, nil
}

func (g guardedMuxer) WriteFrame(f *media.Frame) (err error) {
	defer recoverTo(&err)
	return g.m.WriteFrame(f)
}

func (g guardedMuxer) Flush() (err error) {
	defer recoverTo(&err)
	return g.m.Flush()
}

func (g guardedMuxer) Close() (err error) {
	defer recoverTo(&err)
	return g.m.Close()
}

// recoverTo turns a panic into *err.
func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("muxer panic: %v", r)
	}
}

// bufferedFile is a buffered io.WriteSeeker on a file: writes go through a
// bufio.Writer, a seek flushes it first. It tracks the position and the
// size, so a position query (Seek(0, io.SeekCurrent)) costs nothing.
type bufferedFile struct {
	f    *os.File
	w    *bufio.Writer
	pos  int64
	size int64
}

// Write buffers p. A p that does not fit what is left of the buffer goes
// out whole after what is buffered, never split across two writes, so
// that a process killed between them leaves no element cut in two (a
// muxer hands over whole elements).
func (b *bufferedFile) Write(p []byte) (int, error) {
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := b.w.Write(p) // an empty buffer passes a p larger than itself straight through
	b.pos += int64(n)
	b.size = max(b.size, b.pos)
	return n, err
}

// Seek flushes the buffer and moves in the file.
func (b *bufferedFile) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekCurrent && offset == 0 {
		return b.pos, nil
	}
	if err := b.w.Flush(); err != nil {
		return b.pos, err
	}
	n, err := b.f.Seek(offset, whence)
	if err == nil {
		b.pos = n
	}
	return n, err
}

// Flush writes the buffer to the file.
func (b *bufferedFile) Flush() error { return b.w.Flush() }

// tailBuffer keeps the last 512 bytes written to it (a command's stderr).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

// Write keeps the tail of p.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - 512; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

// String returns the kept bytes, trimmed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
