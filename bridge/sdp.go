package bridge

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/janusbridge/janusbridge/media"
)

// sdpTrack is what an SDP offer says of one media section: enough to
// describe the track to the sinks before its first packet arrives.
type sdpTrack struct {
	mid  string
	kind string
	// codec and its parameters: the first payload type of the section,
	// the one Janus sends.
	codec       string
	clockRate   uint32
	channels    uint16
	payloadType uint8
	fmtp        string
}

// offerTracks lists the audio and video sections of an offer that carry
// media to us (not inactive, not recvonly from the offerer's side).
func offerTracks(offer string) ([]sdpTrack, error) {
	var s sdp.SessionDescription
	if err := s.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("parse offer: %w", err)
	}
	var out []sdpTrack
	for _, m := range s.MediaDescriptions {
		kind := m.MediaName.Media
		if kind != "audio" && kind != "video" || m.MediaName.Port.Value == 0 || len(m.MediaName.Formats) == 0 {
			continue
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		if _, ok := m.Attribute("recvonly"); ok {
			continue
		}
		mid, _ := m.Attribute("mid")
		t := sdpTrack{mid: mid, kind: kind}
		pt, err := strconv.ParseUint(m.MediaName.Formats[0], 10, 7)
		if err != nil {
			return nil, fmt.Errorf("mid %q: bad payload type %q", mid, m.MediaName.Formats[0])
		}
		t.payloadType = uint8(pt)
		prefix := m.MediaName.Formats[0] + " "
		for _, a := range m.Attributes {
			switch {
			case a.Key == "rtpmap" && strings.HasPrefix(a.Value, prefix):
				// e.g. "111 opus/48000/2"
				parts := strings.Split(strings.TrimPrefix(a.Value, prefix), "/")
				t.codec = strings.ToLower(parts[0])
				if len(parts) > 1 {
					if r, err := strconv.ParseUint(parts[1], 10, 32); err == nil {
						t.clockRate = uint32(r)
					}
				}
				t.channels = 1
				if len(parts) > 2 {
					if c, err := strconv.ParseUint(parts[2], 10, 16); err == nil {
						t.channels = uint16(c)
					}
				}
			case a.Key == "fmtp" && strings.HasPrefix(a.Value, prefix):
				t.fmtp = strings.TrimPrefix(a.Value, prefix)
			}
		}
		if media.KindOf(t.codec) != kind {
			return nil, fmt.Errorf("mid %q: unsupported %s codec %q", mid, kind, t.codec)
		}
		out = append(out, t)
	}
	return out, nil
}
