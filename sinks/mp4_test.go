package sinks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/media"
)

// The fragmented MP4 muxer, judged by ffmpeg: frames come from real encodes
// (ffmpeg -> H.264 Annex-B / IVF / Ogg Opus), are parsed here into
// media.Frames, muxed, and the files are read back with ffprobe and decoded
// with ffmpeg.

const mp4TestFPS = 25

var (
	mp4H264Track = media.Track{Index: 0, MID: "1", Kind: "video", Codec: media.H264, ClockRate: 90000, PayloadType: 96,
		Fmtp: "profile-level-id=42e01f;packetization-mode=1"}
	mp4OpusTrack = media.Track{Index: 1, MID: "0", Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2, PayloadType: 111}
)

// mp4NeedTools skips the test (fails it when CI=true) unless the programs
// are installed.
func mp4NeedTools(t *testing.T, programs ...string) {
	t.Helper()
	janustest.RequirePrograms(t, programs...)
}

// mp4TestFrame is one encoded frame of a fixture.
type mp4TestFrame struct {
	data []byte
	key  bool
}

type mp4Encoded struct {
	once   sync.Once
	frames []mp4TestFrame
	err    error
}

// Encodes are made once per test binary.
var mp4Encodes = map[string]*mp4Encoded{"h264": {}, "vp8": {}, "vp9": {}, "av1": {}, "opus": {}}

// mp4Encode returns 4 s of a real encode: video at 25 fps with a keyframe
// every second, or Opus in 20 ms packets.
func mp4Encode(t *testing.T, codec string) []mp4TestFrame {
	t.Helper()
	mp4NeedTools(t, "ffmpeg", "ffprobe")
	e := mp4Encodes[codec]
	e.once.Do(func() { e.frames, e.err = mp4RunEncode(codec) })
	if e.err != nil {
		t.Fatalf("encoding %s: %v", codec, e.err)
	}
	return e.frames
}

func mp4RunEncode(codec string) ([]mp4TestFrame, error) {
	dir, err := os.MkdirTemp("", "mp4test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out")
	video := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", mp4TestFPS), "-t", "4", "-g", strconv.Itoa(mp4TestFPS)}
	var args []string
	switch codec {
	case "h264": // constrained baseline without B-frames, as WebRTC sends it; an AUD starts each access unit
		args = append(video, "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-x264-params", "aud=1",
			"-bsf:v", "h264_mp4toannexb", "-f", "h264", out)
	case "vp8":
		args = append(video, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-f", "ivf", out)
	case "vp9":
		args = append(video, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-f", "ivf", out)
	case "av1":
		args = append(video, "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-f", "ivf", out)
	case "opus":
		args = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4", "-ac", "2",
			"-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-f", "ogg", out}
	}
	cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-y"}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%v: %v\n%s", cmd.Args, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	switch codec {
	case "h264":
		return mp4SplitAnnexB(data), nil
	case "opus":
		return mp4OggPackets(data)
	}
	return mp4IVFFrames(data, codec)
}

// mp4SplitAnnexB cuts an Annex-B stream into access units at each AUD.
func mp4SplitAnnexB(data []byte) []mp4TestFrame {
	var frames []mp4TestFrame
	start := -1
	for i := 0; i+4 < len(data); i++ {
		if data[i] == 0 && data[i+1] == 0 && data[i+2] == 1 && data[i+3]&0x1f == media.H264NALAUD {
			at := i
			if at > 0 && data[at-1] == 0 {
				at--
			}
			if start >= 0 {
				frames = append(frames, mp4TestFrame{data: data[start:at]})
			}
			start = at
		}
	}
	frames = append(frames, mp4TestFrame{data: data[start:]})
	for i := range frames {
		frames[i].key = media.H264HasIDR(frames[i].data)
	}
	return frames
}

// mp4IVFFrames reads the frames of an IVF file; keyframes are VP8 and VP9
// frames with frame_type 0, or AV1 temporal units with a sequence header.
func mp4IVFFrames(data []byte, codec string) ([]mp4TestFrame, error) {
	if len(data) < 32 || string(data[:4]) != "DKIF" {
		return nil, fmt.Errorf("not an IVF file")
	}
	data = data[binary.LittleEndian.Uint16(data[6:]):]
	var frames []mp4TestFrame
	for len(data) >= 12 {
		n := int(binary.LittleEndian.Uint32(data))
		if len(data) < 12+n {
			return nil, fmt.Errorf("truncated IVF frame")
		}
		f := mp4TestFrame{data: data[12 : 12+n]}
		switch codec {
		case "vp8":
			f.key = n > 0 && f.data[0]&1 == 0
		case "vp9":
			_, _, _, f.key = mp4VPCConfig(f.data)
		default:
			_, _, _, f.key = mp4AV1Config(f.data)
		}
		frames = append(frames, f)
		data = data[12+n:]
	}
	return frames, nil
}

// mp4OggPackets returns the audio packets of an Ogg Opus file (without the
// two header packets).
func mp4OggPackets(data []byte) ([]mp4TestFrame, error) {
	var packets []mp4TestFrame
	var partial []byte
	for len(data) > 0 {
		if len(data) < 27 || string(data[:4]) != "OggS" {
			return nil, fmt.Errorf("bad Ogg page")
		}
		segs := data[27 : 27+int(data[26])]
		body := data[27+len(segs):]
		for _, s := range segs {
			partial = append(partial, body[:s]...)
			body = body[s:]
			if s < 255 {
				packets = append(packets, mp4TestFrame{data: partial, key: true})
				partial = nil
			}
		}
		data = body
	}
	if len(packets) < 2 {
		return nil, fmt.Errorf("no Opus packets")
	}
	return packets[2:], nil
}

// mp4Frames interleaves video (25 fps) and audio frames of the first d of
// the fixtures by PTS; every frame at or after gapAt is delayed by gap.
func mp4Frames(video, audio []mp4TestFrame, d, gapAt, gap time.Duration) []*media.Frame {
	var frames []*media.Frame
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	add := func(track int, pts time.Duration, f mp4TestFrame) {
		if pts >= d {
			return
		}
		if gap > 0 && pts >= gapAt {
			pts += gap
		}
		frames = append(frames, &media.Frame{Track: track, PTS: pts, Wall: wall.Add(pts), Keyframe: f.key, Data: f.data})
	}
	for i, f := range video {
		add(mp4H264Track.Index, time.Duration(i)*time.Second/mp4TestFPS, f)
	}
	var pts time.Duration
	for _, f := range audio {
		add(mp4OpusTrack.Index, pts, f)
		pts += time.Duration(mp4OpusSamples(f.data)) * time.Second / 48000
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].PTS < frames[j].PTS })
	return frames
}

// mp4Mux writes frames into a new file; flushEvery > 0 calls Flush after
// every flushEvery frames. The muxer is returned open.
func mp4Mux(t *testing.T, path string, tracks []media.Track, frames []*media.Frame, flushEvery int) muxer {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := newMP4(f, tracks)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := m.WriteFrame(fr); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if flushEvery > 0 && (i+1)%flushEvery == 0 {
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m
}

type mp4Probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		CodecType    string `json:"codec_type"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		SampleRate   string `json:"sample_rate"`
		Channels     int    `json:"channels"`
		StartTime    string `json:"start_time"`
		Duration     string `json:"duration"`
		NbReadFrames string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

// mp4FFprobe runs ffprobe -show_streams -show_format (and -count_frames).
func mp4FFprobe(t *testing.T, path string) mp4Probe {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, stderr.Bytes())
	}
	var p mp4Probe
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, b)
	}
	return p
}

// mp4Decode checks that ffmpeg decodes the whole file without a word.
func mp4Decode(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg -v error -i %s -f null -: %v\n%s", path, err, out)
	}
}

type mp4Packet struct {
	pts, dur float64
	key      bool
}

// mp4Packets lists the packets ffprobe reads from one stream ("v:0", "a:0").
func mp4Packets(t *testing.T, path, stream string) []mp4Packet {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time,duration_time,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var ps []mp4Packet
	for _, l := range strings.Fields(string(b)) {
		f := strings.Split(l, ",")
		if len(f) < 3 {
			t.Fatalf("ffprobe packet line %q", l)
		}
		pts, err1 := strconv.ParseFloat(f[0], 64)
		dur, err2 := strconv.ParseFloat(f[1], 64)
		if f[1] == "N/A" { // ffmpeg reads no duration for Opus in MP4 (its own files neither)
			err2 = nil
		}
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe packet line %q", l)
		}
		ps = append(ps, mp4Packet{pts: pts, dur: dur, key: strings.HasPrefix(f[2], "K")})
	}
	return ps
}

func mp4Seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number of seconds: %q", s)
	}
	return v
}

func mp4Near(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if math.Abs(got-want) > tolerance {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tolerance)
	}
}

// mp4Box is a box of the file's top level or inside a container box.
type mp4Box struct {
	typ  string
	off  int64
	body []byte
}

// mp4Boxes splits b into boxes, failing on a size that does not fit.
func mp4Boxes(t *testing.T, b []byte, base int64) []mp4Box {
	t.Helper()
	var boxes []mp4Box
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			t.Fatalf("%d stray bytes at %d", len(b)-off, base+int64(off))
		}
		size := int(binary.BigEndian.Uint32(b[off:]))
		if size < 8 || off+size > len(b) {
			t.Fatalf("box %q at %d: size %d does not fit", b[off+4:off+8], base+int64(off), size)
		}
		boxes = append(boxes, mp4Box{typ: string(b[off+4 : off+8]), off: base + int64(off), body: b[off+8 : off+size]})
		off += size
	}
	return boxes
}

func mp4Child(t *testing.T, parent mp4Box, typ string) mp4Box {
	t.Helper()
	for _, b := range mp4Boxes(t, parent.body, parent.off+8) {
		if b.typ == typ {
			return b
		}
	}
	t.Fatalf("%s has no %s", parent.typ, typ)
	return mp4Box{}
}

// mp4Timeline is what a file's fragments say about one track.
type mp4Timeline struct {
	starts []int64 // tfdt of each fragment
	ends   []int64 // tfdt + the durations of its samples
	syncs  []bool  // whether the fragment starts with a sync sample
	n      int     // samples
}

// mp4ReadFragments checks the top-level layout (ftyp, moov, moof+mdat
// pairs whose data offsets point into the mdat, optionally mfra) and
// returns the timeline of each track ID.
func mp4ReadFragments(t *testing.T, data []byte, wantMfra bool) map[uint32]*mp4Timeline {
	t.Helper()
	top := mp4Boxes(t, data, 0)
	if len(top) < 2 || top[0].typ != "ftyp" || top[1].typ != "moov" {
		t.Fatalf("file starts with %v, want ftyp, moov", top[:min(2, len(top))])
	}
	mp4Child(t, top[1], "mvex")
	if last := top[len(top)-1]; (last.typ == "mfra") != wantMfra {
		t.Errorf("last box %s; want mfra: %v", last.typ, wantMfra)
	}
	lines := map[uint32]*mp4Timeline{}
	for i := 2; i < len(top); i++ {
		moof := top[i]
		if moof.typ == "mfra" && i == len(top)-1 {
			break
		}
		if moof.typ != "moof" || i+1 >= len(top) || top[i+1].typ != "mdat" {
			t.Fatalf("box %d is %s, want moof followed by mdat", i, moof.typ)
		}
		mdat := top[i+1]
		i++
		for _, traf := range mp4Boxes(t, moof.body, moof.off+8) {
			if traf.typ != "traf" {
				continue
			}
			tfhd, tfdt, trun := mp4Child(t, traf, "tfhd"), mp4Child(t, traf, "tfdt"), mp4Child(t, traf, "trun")
			id := binary.BigEndian.Uint32(tfhd.body[4:])
			l := lines[id]
			if l == nil {
				l = &mp4Timeline{}
				lines[id] = l
			}
			start := int64(binary.BigEndian.Uint64(tfdt.body[4:]))
			count := int(binary.BigEndian.Uint32(trun.body[4:]))
			dataOff := int64(binary.BigEndian.Uint32(trun.body[8:]))
			end, size := start, int64(0)
			for s := range count {
				e := trun.body[12+12*s:]
				end += int64(binary.BigEndian.Uint32(e))
				size += int64(binary.BigEndian.Uint32(e[4:]))
				if s == 0 {
					l.syncs = append(l.syncs, binary.BigEndian.Uint32(e[8:])&0x00010000 == 0)
				}
			}
			if at := moof.off + dataOff; at < mdat.off+8 || at+size > mdat.off+8+int64(len(mdat.body)) {
				t.Fatalf("track %d: samples at %d+%d outside the mdat at %d", id, at, size, mdat.off)
			}
			l.starts, l.ends, l.n = append(l.starts, start), append(l.ends, end), l.n+count
		}
	}
	return lines
}

var mp4Both = []media.Track{mp4H264Track, mp4OpusTrack}

func TestMP4H264OpusFFprobe(t *testing.T) {
	v, a := mp4Encode(t, "h264"), mp4Encode(t, "opus")
	path := filepath.Join(t.TempDir(), "a.mp4")
	m := mp4Mux(t, path, mp4Both, mp4Frames(v, a, 3*time.Second, 0, 0), 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	p := mp4FFprobe(t, path)
	if len(p.Streams) != 2 {
		t.Fatalf("%d streams, want 2: %+v", len(p.Streams), p.Streams)
	}
	vs, as := p.Streams[0], p.Streams[1]
	if vs.CodecName != "h264" || vs.Width != 320 || vs.Height != 240 || vs.NbReadFrames != "75" {
		t.Errorf("video stream %+v, want h264 320x240 with 75 frames", vs)
	}
	if as.CodecName != "opus" || as.SampleRate != "48000" || as.Channels != 2 || as.NbReadFrames != "150" {
		t.Errorf("audio stream %+v, want opus 48 kHz stereo with 150 frames", as)
	}
	mp4Near(t, "format duration", mp4Seconds(t, p.Format.Duration), 3, 0.1)
	mp4Near(t, "video duration", mp4Seconds(t, vs.Duration), 3, 0.1)
	mp4Near(t, "audio duration", mp4Seconds(t, as.Duration), 3, 0.1)
	mp4Decode(t, path)

	// Fragments start at the keyframes (one a second) and hold at most a
	// second; each track's timeline is continuous.
	data, _ := os.ReadFile(path)
	lines := mp4ReadFragments(t, data, true)
	video := lines[1]
	if len(video.starts) != 3 {
		t.Errorf("video in %d fragments, want 3", len(video.starts))
	}
	for i, sync := range video.syncs {
		if !sync || video.starts[i] != int64(i)*90000 {
			t.Errorf("video fragment %d starts at %d (sync %v), want a keyframe at %d", i, video.starts[i], sync, i*90000)
		}
	}
	for id, l := range lines {
		for i := 1; i < len(l.starts); i++ {
			if l.starts[i] != l.ends[i-1] {
				t.Errorf("track %d: fragment %d starts at %d, the previous ended at %d", id, i, l.starts[i], l.ends[i-1])
			}
		}
	}
}

func TestMP4GapKept(t *testing.T) {
	v, a := mp4Encode(t, "h264"), mp4Encode(t, "opus")
	path := filepath.Join(t.TempDir(), "gap.mp4")
	// 3 s of media with a 2 s pause after 1.5 s: 5 s of file.
	m := mp4Mux(t, path, mp4Both, mp4Frames(v, a, 3*time.Second, 1500*time.Millisecond, 2*time.Second), 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p := mp4FFprobe(t, path)
	mp4Near(t, "format duration", mp4Seconds(t, p.Format.Duration), 5, 0.1)
	if p.Streams[0].NbReadFrames != "75" || p.Streams[1].NbReadFrames != "150" {
		t.Errorf("read %s video and %s audio frames, want 75 and 150", p.Streams[0].NbReadFrames, p.Streams[1].NbReadFrames)
	}
	mp4Decode(t, path)
	for _, c := range []struct {
		stream     string
		before     float64 // pts of the last packet before the gap
		after      float64 // and of the first after it
		nextPacket float64
	}{{"v:0", 1.48, 3.52, 0.04}, {"a:0", 1.48, 3.50, 0.02}} {
		ps := mp4Packets(t, path, c.stream)
		i := 0
		for i < len(ps) && ps[i].pts < 2 {
			i++
		}
		if i == 0 || i == len(ps) {
			t.Fatalf("%s: no gap in %d packets", c.stream, len(ps))
		}
		mp4Near(t, c.stream+" last pts before the gap", ps[i-1].pts, c.before, 0.001)
		mp4Near(t, c.stream+" first pts after the gap", ps[i].pts, c.after, 0.001)
	}

	// In the file the gap is a jump of tfdt; the sample before it keeps its
	// usual duration.
	data, _ := os.ReadFile(path)
	for id, l := range mp4ReadFragments(t, data, true) {
		jumps := 0
		for i := 1; i < len(l.starts); i++ {
			if d := l.starts[i] - l.ends[i-1]; d != 0 {
				jumps++
				timescale := map[uint32]float64{1: 90000, 2: 48000}[id]
				mp4Near(t, fmt.Sprintf("track %d tfdt jump", id), float64(d)/timescale, 2, 0.001)
			}
		}
		if jumps != 1 {
			t.Errorf("track %d: %d tfdt jumps, want 1", id, jumps)
		}
	}
}

// TestMP4FlushedCopyDecodes copies the file as a SIGKILL would leave it:
// after a Flush it holds everything but the newest frame of each track;
// without one, the fragments cut by time or keyframe (at most a second old).
func TestMP4FlushedCopyDecodes(t *testing.T) {
	v, a := mp4Encode(t, "h264"), mp4Encode(t, "opus")
	dir := t.TempDir()
	path := filepath.Join(dir, "live.mp4")
	frames := mp4Frames(v, a, 4*time.Second, 0, 0)
	cut := 0
	for cut < len(frames) && frames[cut].PTS < 2500*time.Millisecond {
		cut++
	}
	m := mp4Mux(t, path, mp4Both, frames[:cut], 0)
	last := frames[cut-1].PTS.Seconds()

	for _, c := range []struct {
		name  string
		flush bool
		lose  float64 // media the copy may miss at its end
	}{{"unflushed", false, 1.0}, {"flushed", true, 0.05}} {
		if c.flush {
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cp := filepath.Join(dir, c.name+".mp4")
		if err := os.WriteFile(cp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mp4ReadFragments(t, data, false)
		mp4Decode(t, cp)
		p := mp4FFprobe(t, cp)
		if len(p.Streams) != 2 {
			t.Fatalf("%s: %d streams", c.name, len(p.Streams))
		}
		for _, s := range []string{"v:0", "a:0"} {
			ps := mp4Packets(t, cp, s)
			if len(ps) == 0 {
				t.Fatalf("%s: no %s packets", c.name, s)
			}
			end := ps[len(ps)-1].pts
			if end < last-c.lose || end > last {
				t.Errorf("%s copy: last %s packet at %.3f s, the last frame written was at %.3f s (may lose %.2f s)",
					c.name, s, end, last, c.lose)
			}
		}
	}

	// The muxer carries on and finalises the same file.
	for _, f := range frames[cut:] {
		if err := m.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p := mp4FFprobe(t, path)
	mp4Near(t, "final duration", mp4Seconds(t, p.Format.Duration), 4, 0.1)
	if p.Streams[0].NbReadFrames != "100" || p.Streams[1].NbReadFrames != "200" {
		t.Errorf("read %s video and %s audio frames, want 100 and 200", p.Streams[0].NbReadFrames, p.Streams[1].NbReadFrames)
	}
	mp4Decode(t, path)
}

func TestMP4VP9AndAV1(t *testing.T) {
	for _, codec := range []string{"vp9", "av1"} {
		t.Run(codec, func(t *testing.T) {
			v, a := mp4Encode(t, codec), mp4Encode(t, "opus")
			video := mp4H264Track
			video.Codec, video.Fmtp = codec, ""
			path := filepath.Join(t.TempDir(), codec+".mp4")
			m := mp4Mux(t, path, []media.Track{video, mp4OpusTrack}, mp4Frames(v, a, 3*time.Second, 0, 0), 0)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			p := mp4FFprobe(t, path)
			if len(p.Streams) != 2 {
				t.Fatalf("%d streams", len(p.Streams))
			}
			if s := p.Streams[0]; s.CodecName != codec || s.Width != 320 || s.Height != 240 || s.NbReadFrames != "75" {
				t.Errorf("video stream %+v, want %s 320x240 with 75 frames", s, codec)
			}
			mp4Near(t, "format duration", mp4Seconds(t, p.Format.Duration), 3, 0.1)
			mp4Decode(t, path)
		})
	}
}

// TestMP4WaitsForVideoKeyframe: frames before the video's first keyframe are
// queued (audio) or dropped (video deltas); the init segment follows the
// keyframe, and nothing of the audio is lost.
func TestMP4WaitsForVideoKeyframe(t *testing.T) {
	v, a := mp4Encode(t, "h264"), mp4Encode(t, "opus")
	path := filepath.Join(t.TempDir(), "late.mp4")
	var frames []*media.Frame
	for _, f := range mp4Frames(v, a, 3*time.Second, 0, 0) {
		if f.Track == mp4H264Track.Index && f.PTS < 500*time.Millisecond {
			continue // the video arrives from frame 12, a delta frame
		}
		frames = append(frames, f)
	}
	m := mp4Mux(t, path, mp4Both, frames, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p := mp4FFprobe(t, path)
	if len(p.Streams) != 2 {
		t.Fatalf("%d streams", len(p.Streams))
	}
	mp4Near(t, "video start", mp4Seconds(t, p.Streams[0].StartTime), 1, 0.001)
	mp4Near(t, "audio start", mp4Seconds(t, p.Streams[1].StartTime), 0, 0.001)
	if p.Streams[0].NbReadFrames != "50" || p.Streams[1].NbReadFrames != "150" {
		t.Errorf("read %s video and %s audio frames, want 50 and 150", p.Streams[0].NbReadFrames, p.Streams[1].NbReadFrames)
	}
	mp4Decode(t, path)
}

// TestMP4VideoNeverStarts: a video track that sends nothing holds the init
// segment back until Close, or for mp4InitWait at most; the file then has
// the audio alone, and video that comes later is dropped.
func TestMP4VideoNeverStarts(t *testing.T) {
	a := mp4Encode(t, "opus")
	for _, d := range []time.Duration{2 * time.Second, mp4InitWait + 2*time.Second} {
		t.Run(d.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audio.mp4")
			m := mp4Mux(t, path, mp4Both, mp4Frames(nil, append(a, a...), d, 0, 0), 0)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if waited := d > mp4InitWait; (st.Size() > 0) != waited {
				t.Errorf("after %v of audio the file has %d bytes", d, st.Size())
			}
			if d > mp4InitWait {
				late := &media.Frame{Track: mp4H264Track.Index, PTS: d, Keyframe: true, Data: mp4Encode(t, "h264")[0].data}
				if err := m.WriteFrame(late); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			p := mp4FFprobe(t, path)
			if len(p.Streams) != 1 || p.Streams[0].CodecName != "opus" {
				t.Fatalf("streams %+v, want the opus one alone", p.Streams)
			}
			mp4Near(t, "duration", mp4Seconds(t, p.Format.Duration), d.Seconds(), 0.05)
			mp4Decode(t, path)
		})
	}
}

func TestMP4RejectsOtherCodecs(t *testing.T) {
	for _, codec := range []string{media.VP8, media.PCMU, "g722"} {
		_, err := newMP4(&mp4SeekBuffer{}, []media.Track{{Index: 0, Codec: codec}})
		if err == nil || !strings.Contains(err.Error(), codec) || !strings.Contains(err.Error(), "mp4") {
			t.Errorf("codec %s: error %v, want one naming the codec and mp4", codec, err)
		}
	}
	m, err := newMP4(&mp4SeekBuffer{}, []media.Track{mp4OpusTrack})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFrame(&media.Frame{Track: 7, Data: []byte{1}}); err == nil {
		t.Error("frame of an unknown track accepted")
	}
}

func TestMP4OpusSamples(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want uint32
	}{
		{[]byte{0xfc}, 960},        // config 31: CELT FB 20 ms; code 0: one frame
		{[]byte{0x78}, 960},        // config 15: hybrid FB 20 ms
		{[]byte{0x08}, 960},        // config 1: SILK NB 20 ms
		{[]byte{0x1b, 0x03}, 8640}, // config 3: SILK NB 60 ms; code 3 with 3 frames
		{[]byte{0xe1}, 240},        // config 28: CELT 2.5 ms; code 1: two frames
		{[]byte{0x0b}, 0},          // code 3 without its frame count
		{[]byte{}, 0},
	} {
		if got := mp4OpusSamples(c.p); got != c.want {
			t.Errorf("mp4OpusSamples(%x) = %d, want %d", c.p, got, c.want)
		}
	}
}

// mp4SeekBuffer is an in-memory io.WriteSeeker.
type mp4SeekBuffer struct {
	b   []byte
	pos int
}

func (s *mp4SeekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *mp4SeekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case 1:
		off += int64(s.pos)
	case 2:
		off += int64(len(s.b))
	}
	s.pos = int(off)
	return off, nil
}

// TestMP4ParamSetsBeforeKeyframe: an H.264 keyframe whose SPS and PPS came
// in a frame of their own still starts the track.
func TestMP4ParamSetsBeforeKeyframe(t *testing.T) {
	v, a := mp4Encode(t, "h264"), mp4Encode(t, "opus")
	var params, idr []byte
	for _, nal := range media.SplitAnnexB(nil, v[0].data) {
		nal = append([]byte{0, 0, 0, 1}, nal...)
		switch media.H264NALType(nal[4:]) {
		case media.H264NALSPS, media.H264NALPPS:
			params = append(params, nal...)
		case media.H264NALAUD:
		default:
			idr = append(idr, nal...)
		}
	}
	var frames []*media.Frame
	for _, f := range mp4Frames(v, a, 2*time.Second, 0, 0) {
		if f.Track == mp4H264Track.Index && f.PTS == 0 {
			frames = append(frames, &media.Frame{Track: f.Track, Data: params})
			f.Data = idr
		}
		frames = append(frames, f)
	}
	path := filepath.Join(t.TempDir(), "params.mp4")
	m := mp4Mux(t, path, mp4Both, frames, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	p := mp4FFprobe(t, path)
	if len(p.Streams) != 2 || p.Streams[0].NbReadFrames != "50" || p.Streams[0].Width != 320 {
		t.Fatalf("streams %+v, want 50 pictures of 320x240", p.Streams)
	}
	mp4Decode(t, path)
}

// FuzzMP4Frames feeds arbitrary frames (the first byte of each picks the
// track and the keyframe flag) to a muxer of every codec: no panic, and the
// file stays a sequence of well-formed boxes.
func FuzzMP4Frames(f *testing.F) {
	f.Add([]byte{0x80, 0x00, 0x00, 0x01, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x01, 0x68, 0xcb, 0x83, 0xcb, 0x20})
	f.Add([]byte{0x81, 0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6})
	f.Add([]byte{0x82, 0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x00, 0x40})
	f.Add([]byte{0x03, 0xfc, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		tracks := []media.Track{
			{Index: 0, Codec: media.H264}, {Index: 1, Codec: media.VP9},
			{Index: 2, Codec: media.AV1}, {Index: 3, Codec: media.Opus, Channels: 2},
		}
		w := &mp4SeekBuffer{}
		m, err := newMP4(w, tracks)
		if err != nil {
			t.Fatal(err)
		}
		pts := time.Duration(0)
		for i, part := range bytes.Split(data, []byte("\xff\xfe")) {
			if len(part) == 0 {
				continue
			}
			pts += time.Duration(part[0]&0x3f) * 10 * time.Millisecond
			fr := &media.Frame{Track: int(part[0]>>6) & 3, PTS: pts, Keyframe: part[0]&0x80 != 0 || i == 0, Data: part[1:]}
			if err := m.WriteFrame(fr); err != nil {
				return
			}
			if i%7 == 6 {
				if err := m.Flush(); err != nil {
					return
				}
			}
		}
		if err := m.Close(); err != nil {
			return
		}
		mp4Boxes(t, w.b, 0)
	})
}
