// Package media holds what the bridge, the sinks and the sources share
// about media: codec names and which container or output takes which codec.
package media

import "strings"

// Codec names, as in the configuration and Janus's plugin APIs.
const (
	Opus = "opus"
	PCMU = "pcmu"
	PCMA = "pcma"
	VP8  = "vp8"
	VP9  = "vp9"
	H264 = "h264"
	AV1  = "av1"
)

// KindOf returns "audio" or "video" for a codec name, "" when unknown.
func KindOf(codec string) string {
	switch strings.ToLower(codec) {
	case Opus, PCMU, PCMA:
		return "audio"
	case VP8, VP9, H264, AV1:
		return "video"
	}
	return ""
}

// sinkCodecs is what each sink type takes without transcoding (SPEC §5);
// rtmp takes Opus because the sink transcodes it to AAC.
var sinkCodecs = map[string][]string{
	"webm": {VP8, VP9, AV1, Opus},
	"mkv":  {VP8, VP9, H264, AV1, Opus, PCMU, PCMA},
	"ogg":  {Opus},
	"mp4":  {H264, VP9, AV1, Opus},
	"rtp":  {VP8, VP9, H264, AV1, Opus, PCMU, PCMA},
	"rtmp": {H264, Opus},
}

// SinkAccepts reports whether a sink of type sinkType can take codec.
func SinkAccepts(sinkType, codec string) bool {
	codec = strings.ToLower(codec)
	for _, c := range sinkCodecs[sinkType] {
		if c == codec {
			return true
		}
	}
	return false
}

// SinkCodecs returns the codecs a sink type takes, for messages.
func SinkCodecs(sinkType string) []string { return sinkCodecs[sinkType] }
