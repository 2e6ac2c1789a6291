package sources

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/sdp/v3"
)

// maxSDPSize bounds the SDP file read: a session description is small.
const maxSDPSize = 1 << 20

// readFile reads a small text file (an SDP), refusing one over maxSDPSize.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSDPSize+1))
	if err != nil {
		return nil, fmt.Errorf("sdp %s: %w", path, err)
	}
	if len(data) > maxSDPSize {
		return nil, fmt.Errorf("sdp %s: larger than %d bytes", path, maxSDPSize)
	}
	return data, nil
}

// mediaSection is an SDP media description and its kind.
type mediaSection struct {
	kind string
	md   *sdp.MediaDescription
}

// attr returns the value of the attribute "key:PT value" for payload type
// pt (rtpmap, fmtp), without the payload type.
func (m *mediaSection) attr(key string, pt int) (string, bool) {
	prefix := strconv.Itoa(pt) + " "
	for _, a := range m.md.Attributes {
		if a.Key == key && strings.HasPrefix(a.Value, prefix) {
			return strings.TrimSpace(a.Value[len(prefix):]), true
		}
	}
	return "", false
}

// tracksFromSDP describes the tracks of an SDP: one per audio or video
// media section, with the first of its payload types that names a codec we
// take, received at the section's (or the session's) connection address
// and the section's port. A connection address that is multicast or
// missing is listened on as the wildcard address.
func tracksFromSDP(data []byte) ([]media.Track, []string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(data)); err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	var tracks []media.Track
	var listen []string
	for i, md := range sd.MediaDescriptions {
		kind := md.MediaName.Media
		if kind != "audio" && kind != "video" {
			continue
		}
		if !strings.Contains(strings.Join(md.MediaName.Protos, "/"), "RTP") {
			return nil, nil, fmt.Errorf("media %d: protocol %q is not RTP", i, strings.Join(md.MediaName.Protos, "/"))
		}
		port := md.MediaName.Port.Value
		if port <= 0 || port > 65535 {
			return nil, nil, fmt.Errorf("media %d: port %d out of range", i, port)
		}
		ms := &mediaSection{kind: kind, md: md}
		found := false
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			t, ok := trackFromSDPFormat(ms, pt)
			if !ok {
				continue
			}
			t.Index = len(tracks)
			tracks = append(tracks, t)
			found = true
			break
		}
		if !found {
			return nil, nil, fmt.Errorf("media %d (%s): no payload type with a codec we take (%s)", i, kind,
				strings.Join([]string{media.Opus, media.PCMU, media.PCMA, media.VP8, media.VP9, media.H264, media.AV1}, ", "))
		}
		host := "0.0.0.0"
		conn := md.ConnectionInformation
		if conn == nil {
			conn = sd.ConnectionInformation
		}
		if conn != nil && conn.Address != nil {
			if ip := net.ParseIP(conn.Address.Address); ip != nil && !ip.IsMulticast() && !ip.IsUnspecified() {
				host = ip.String()
			}
		}
		listen = append(listen, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if len(tracks) == 0 {
		return nil, nil, errors.New("no audio or video media sections")
	}
	return tracks, listen, nil
}
