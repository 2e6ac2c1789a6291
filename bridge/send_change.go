package bridge

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
)

// change applies a track change of the control API.
func (s *send) change(c TrackChange) error {
	switch c.Action {
	case TrackReplace:
		return s.replace(c.MID, c.Track)
	case TrackAdd:
		return s.add(c.Track)
	case TrackRemove:
		return s.remove(c.MID)
	}
	return fmt.Errorf("unknown action %q (want add, remove or replace)", c.Action)
}

// specSource opens the source of a track given through the API and
// returns it with the index of its track of the spec's kind.
func (s *send) specSource(spec *TrackSpec) (media.Source, int, error) {
	if spec == nil {
		return nil, 0, errors.New("no track given")
	}
	if spec.Kind != "audio" && spec.Kind != "video" {
		return nil, 0, fmt.Errorf("track kind %q: want audio or video", spec.Kind)
	}
	var cfg config.Source
	switch {
	case spec.File != "" && spec.Listen != "":
		return nil, 0, errors.New("track: file and listen both given")
	case spec.File != "":
		cfg = config.Source{Type: config.SourceFile, Path: spec.File, Loop: spec.Loop}
	case spec.Listen != "":
		if media.KindOf(spec.Codec) != spec.Kind {
			return nil, 0, fmt.Errorf("track codec %q is not a %s codec", spec.Codec, spec.Kind)
		}
		cfg = config.Source{Type: config.SourceRTP, Tracks: []config.SourceTrack{{
			Kind: spec.Kind, Codec: spec.Codec, Listen: spec.Listen, PayloadType: int(spec.PayloadType),
		}}}
	default:
		return nil, 0, errors.New("track: neither file nor listen given")
	}
	src, err := s.open(&cfg)
	if err != nil {
		return nil, 0, err
	}
	for i, t := range src.Tracks() {
		if t.Kind == spec.Kind {
			return src, i, nil
		}
	}
	return nil, 0, fmt.Errorf("the source has no %s track", spec.Kind)
}

// trackByMIDLocked finds an active track by its negotiated mid; between
// sessions, when no mid is negotiated, by its index (the mid it is
// negotiated with unless tracks were removed).
func (s *send) trackByMIDLocked(mid string) (*sendTrack, error) {
	if mid == "" {
		return nil, errors.New("no mid given")
	}
	for _, t := range s.tracks {
		t.mu.Lock()
		ok := !t.removed && (t.mid == mid || t.mid == "" && strconv.Itoa(t.desc.Index) == mid)
		t.mu.Unlock()
		if ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("no track with mid %q", mid)
}

// replace switches the source of the track of mid; the track goes on with
// continuous sequence numbers and timestamps, no renegotiation.
func (s *send) replace(mid string, spec *TrackSpec) error {
	src, ix, err := s.specSource(spec)
	if err != nil {
		return err
	}
	st := src.Tracks()[ix]
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.trackByMIDLocked(mid)
	if err != nil {
		return err
	}
	if st.Kind != t.desc.Kind || st.Codec != t.desc.Codec || st.ClockRate != t.desc.ClockRate {
		return fmt.Errorf("mid %s sends %s/%d, the new source %s/%d: replace needs the same codec (remove and add instead)",
			mid, t.desc.Codec, t.desc.ClockRate, st.Codec, st.ClockRate)
	}
	in := &input{src: src}
	routes := make([]*sendTrack, len(src.Tracks()))
	routes[ix] = t
	in.routes.Store(&routes)
	t.mu.Lock()
	old, oldIx := t.owner, t.ownerIx
	t.owner, t.ownerIx = in, ix
	t.mu.Unlock()
	if old != nil {
		setRoute(old, oldIx, nil)
		s.dropInputLocked(old)
	}
	s.startInputLocked(in)
	s.b.log.Info("track source replaced", "mid", mid, "index", t.desc.Index)
	return nil
}

// add adds a track fed by a new source and renegotiates.
func (s *send) add(spec *TrackSpec) error {
	if s.b.cfg.Plugin == config.PluginStreaming {
		return errors.New("a Streaming mountpoint's streams are fixed: change the configuration instead")
	}
	src, ix, err := s.specSource(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	t, err := s.newTrackLocked(src.Tracks()[ix])
	if err != nil {
		s.mu.Unlock()
		return err
	}
	in := &input{src: src}
	routes := make([]*sendTrack, len(src.Tracks()))
	routes[ix] = t
	in.routes.Store(&routes)
	t.owner, t.ownerIx = in, ix
	s.startInputLocked(in)
	s.mu.Unlock()
	s.b.log.Info("track added", "index", t.desc.Index, "kind", t.desc.Kind, "codec", t.desc.Codec)
	s.askRenegotiation()
	return nil
}

// remove stops sending the track of mid and renegotiates.
func (s *send) remove(mid string) error {
	if s.b.cfg.Plugin == config.PluginStreaming {
		return errors.New("a Streaming mountpoint's streams are fixed: change the configuration instead")
	}
	s.mu.Lock()
	t, err := s.trackByMIDLocked(mid)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	active := 0
	for _, x := range s.tracks {
		x.mu.Lock()
		if !x.removed {
			active++
		}
		x.mu.Unlock()
	}
	if active == 1 {
		s.mu.Unlock()
		return fmt.Errorf("mid %s is the last track: stop the bridge instead", mid)
	}
	t.mu.Lock()
	t.removed = true
	old, oldIx := t.owner, t.ownerIx
	t.owner = nil
	t.mu.Unlock()
	if old != nil {
		setRoute(old, oldIx, nil)
		s.dropInputLocked(old)
	}
	s.mu.Unlock()
	s.b.log.Info("track removed", "mid", mid, "index", t.desc.Index)
	s.askRenegotiation()
	return nil
}
