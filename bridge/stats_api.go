package bridge

import (
	"cmp"
	"slices"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/sinks"
)

// BridgeStats is a snapshot of a bridge's counters, for the control API, the
// metrics and the tests. It covers the bridge's current outputs (one per
// recorded publisher; a single one, Feed "", for a Streaming bridge): their
// counters are cumulative over the output's life, across reconnects and
// renegotiations, and go when the output goes (publisher gone, bridge
// stopped).
type BridgeStats struct {
	// Tracks are the outputs' tracks, by feed, then index (a track keeps
	// its index across renegotiations).
	Tracks []TrackSnapshot `json:"tracks"`
	// Sinks are the outputs' sinks, by feed, then in configuration order.
	Sinks []SinkSnapshot `json:"sinks"`
	// ICERestarts counts the bridge's ICE restarts (on ICE failure or
	// asked through RestartICE); Renegotiations its renegotiations after
	// the first negotiation (Janus's new offers, subscription updates; for
	// a send bridge, its track set changed: tracks added or removed).
	ICERestarts    uint64 `json:"ice_restarts"`
	Renegotiations uint64 `json:"renegotiations"`
	// SourceDropped counts, for a send bridge with RTP sources, the input
	// its running sources dropped as malformed or stray; nil otherwise.
	SourceDropped *SourceDropped `json:"source_dropped,omitempty"`
}

// SourceDropped sums the bad-input counters of a send bridge's running RTP
// sources (see sources.RTPStats): datagrams that are not RTP or RTCP or do
// not parse, RTP of another payload type or of a stray SSRC, and RTCP that
// does not parse. Counted, never logged per packet.
type SourceDropped struct {
	Malformed        uint64 `json:"malformed"`
	WrongPayloadType uint64 `json:"wrong_payload_type"`
	ForeignSSRC      uint64 `json:"foreign_ssrc"`
	RTCPMalformed    uint64 `json:"rtcp_malformed"`
}

// TrackSnapshot is a copy of one track's TrackStats, with the track's
// description.
type TrackSnapshot struct {
	// Feed is the publisher's feed id, "" for a Streaming bridge.
	Feed  string `json:"feed,omitempty"`
	Index int    `json:"index"`
	MID   string `json:"mid"`
	Kind  string `json:"kind"`
	Codec string `json:"codec"`
	// Direction is "in" for a track received from Janus, "out" for a track
	// a send bridge sends.
	Direction string `json:"direction"`
	// Packets and Bytes count the RTP packets read (retransmissions
	// included) and their size on the wire; for an "out" track, the
	// packets sent (retransmissions by the NACK responder not included).
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Lost, NACKs and PLIs are TrackStats' counters of the same names: for
	// an "in" track the NACKs and keyframe requests we sent; for an "out"
	// track the packets Janus asked us to resend and the keyframe requests
	// (PLI or FIR) Janus sent us. Lost is 0 for an "out" track.
	Lost  uint64 `json:"lost"`
	NACKs uint64 `json:"nacks"`
	PLIs  uint64 `json:"plis"`
	// FirstKeyframe is when the first packet of an "in" video track's
	// first keyframe arrived: a recording's start-up counts from it.
	FirstKeyframe *time.Time `json:"first_keyframe,omitempty"`
}

// SinkSnapshot is the state of one sink of an output.
type SinkSnapshot struct {
	// Feed is the publisher's feed id, "" for a Streaming bridge.
	Feed string `json:"feed,omitempty"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Bytes counts the bytes written: a file sink's files, an rtp sink's
	// packets (headers included).
	Bytes uint64 `json:"bytes"`
	// Errors counts failures: for a file sink, the frames and track sets it
	// refused (a failed file counts once, where it failed); for an rtp sink,
	// the packets it could not send.
	Errors uint64 `json:"errors"`
	// Dropped counts the frames discarded because a file sink's queue was
	// full (an rtp sink has no queue).
	Dropped uint64 `json:"dropped"`
	// FirstVideoFrame is when a file or rtmp sink wrote its first video
	// frame; minus its track's FirstKeyframe, the start-up latency.
	FirstVideoFrame *time.Time `json:"first_video_frame,omitempty"`
	// File is a file sink's own status (current path, files, errors, last
	// error, state); nil for other sinks.
	File *sinks.FileStatus `json:"file,omitempty"`
	// RTMP is an rtmp sink's own status (URL with the key redacted, state,
	// reconnects, transcoder); nil for other sinks.
	RTMP *sinks.RTMPStatus `json:"rtmp,omitempty"`
}

// fileStatuser is what Stats asks of a file sink (a *sinks.File).
type fileStatuser interface{ Status() sinks.FileStatus }

// Stats returns a snapshot of the bridge's counters. It may be called from
// any goroutine at any time; it is empty before Run has built the bridge's
// outputs and after Run has finalised them.
func (b *Bridge) Stats() BridgeStats {
	if tx := b.tx.Load(); tx != nil {
		return tx.stats()
	}
	r := b.rx.Load()
	if r == nil {
		return BridgeStats{ICERestarts: b.iceRestarts.Load(), Renegotiations: b.renegotiations.Load()}
	}
	return b.recvStats(r)
}

// recvStats is the snapshot of the outputs of r.
func (b *Bridge) recvStats(r *recv) BridgeStats {
	st := BridgeStats{ICERestarts: b.iceRestarts.Load(), Renegotiations: b.renegotiations.Load()}
	r.mu.Lock()
	outs := make([]*output, 0, len(r.outputs))
	for _, out := range r.outputs {
		outs = append(outs, out)
		for _, t := range out.tracks {
			st.Tracks = append(st.Tracks, TrackSnapshot{
				Feed: out.feed.id, Index: t.desc.Index, MID: t.desc.MID, Kind: t.desc.Kind, Codec: t.desc.Codec, Direction: "in",
				Packets: t.stats.Packets.Load(), Bytes: t.stats.Bytes.Load(),
				Lost: t.stats.Lost.Load(), NACKs: t.stats.NACKs.Load(), PLIs: t.stats.PLIs.Load(),
				FirstKeyframe: t.stats.FirstKeyframe.Load(),
			})
		}
	}
	r.mu.Unlock()
	slices.SortFunc(st.Tracks, func(x, y TrackSnapshot) int {
		return cmp.Or(cmp.Compare(x.Feed, y.Feed), cmp.Compare(x.Index, y.Index))
	})
	slices.SortFunc(outs, func(x, y *output) int { return cmp.Compare(x.feed.id, y.feed.id) })
	// The sinks' own status is read outside r.mu: a file sink holds its
	// lock while it writes. An output's sink lists do not change after
	// newOutput, which adds them in configuration order: the file sinks to
	// files, the rtp sinks to rtps.
	for _, out := range outs {
		files, rtps := out.files, out.rtps
		for _, sc := range b.cfg.Sinks {
			s := SinkSnapshot{Feed: out.feed.id, Name: sc.Name, Type: sc.Type}
			switch {
			case sc.Type == config.SinkRTP && len(rtps) > 0:
				if rs, ok := rtps[0].sink.(*sinks.RTP); ok {
					rst := rs.Stats()
					s.Bytes, s.Errors = rst.Bytes, rst.Errors
				}
				rtps = rtps[1:]
			case sc.Type != config.SinkRTP && len(files) > 0:
				q := files[0]
				files = files[1:]
				s.Errors, s.Dropped = q.stats.Errors.Load(), q.stats.Dropped.Load()
				s.FirstVideoFrame = q.stats.FirstVideoFrame.Load()
				if fs, ok := q.sink.(fileStatuser); ok {
					status := fs.Status()
					s.File, s.Bytes = &status, status.Bytes
				}
				if rs, ok := q.sink.(*sinks.RTMP); ok {
					status := rs.Status()
					s.RTMP, s.Bytes = &status, status.Bytes
					s.Errors += status.Errors
					s.Dropped += status.Dropped
				}
			default:
				continue
			}
			st.Sinks = append(st.Sinks, s)
		}
	}
	return st
}
