package sinks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/media"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// oggNeedTools skips the test (fails it when CI=true, as janustest does)
// unless the programs are installed.
func oggNeedTools(t *testing.T, programs ...string) {
	t.Helper()
	janustest.RequirePrograms(t, programs...)
}

// oggPage is one parsed Ogg page.
type oggPage struct {
	flags   byte
	granule int64
	serial  uint32
	seq     uint32
	packets [][]byte // packets completed on the page (no continuation in our files)
}

// oggParse reads the pages of an Ogg file, checking capture patterns and CRCs.
// Packets spanning pages are joined onto the page where they complete.
func oggParse(t *testing.T, data []byte) []oggPage {
	t.Helper()
	var pages []oggPage
	var partial []byte
	for len(data) > 0 {
		if len(data) < 27 || string(data[:4]) != "OggS" {
			t.Fatalf("page %d: no capture pattern", len(pages))
		}
		nsegs := int(data[26])
		if len(data) < 27+nsegs {
			t.Fatalf("page %d: truncated segment table", len(pages))
		}
		segs := data[27 : 27+nsegs]
		size := 27 + nsegs
		for _, s := range segs {
			size += int(s)
		}
		if len(data) < size {
			t.Fatalf("page %d: truncated body", len(pages))
		}
		page := append([]byte(nil), data[:size]...)
		want := binary.LittleEndian.Uint32(page[22:])
		binary.LittleEndian.PutUint32(page[22:], 0)
		if got := media.OggChecksum(page); got != want {
			t.Fatalf("page %d: CRC %08x, header says %08x", len(pages), got, want)
		}
		p := oggPage{
			flags:   data[5],
			granule: int64(binary.LittleEndian.Uint64(data[6:])),
			serial:  binary.LittleEndian.Uint32(data[14:]),
			seq:     binary.LittleEndian.Uint32(data[18:]),
		}
		body := data[27+nsegs : size]
		for _, s := range segs {
			partial = append(partial, body[:s]...)
			body = body[s:]
			if s < 255 {
				p.packets = append(p.packets, partial)
				partial = nil
			}
		}
		pages = append(pages, p)
		data = data[size:]
	}
	return pages
}

// oggEncodeOpus encodes seconds of a sine with ffmpeg (libopus, 20 ms frames)
// and returns the Opus packets.
func oggEncodeOpus(t *testing.T, seconds float64) [][]byte {
	t.Helper()
	oggNeedTools(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "src.ogg")
	cmd := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=48000:duration="+strconv.FormatFloat(seconds, 'f', -1, 64),
		"-ac", "2", "-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-f", "ogg", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for _, p := range oggParse(t, data) {
		packets = append(packets, p.packets...)
	}
	if len(packets) < 3 || !bytes.HasPrefix(packets[0], []byte("OpusHead")) {
		t.Fatalf("ffmpeg's ogg: %d packets", len(packets))
	}
	return packets[2:] // skip OpusHead and OpusTags
}

// oggProbe is what oggFFprobe reads of a file: its format and streams.
type oggProbe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Channels  int    `json:"channels"`
		StartTime string `json:"start_time"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// oggFFprobe runs ffprobe on a file.
func oggFFprobe(t *testing.T, path string) oggProbe {
	t.Helper()
	oggNeedTools(t, "ffprobe")
	b, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var r oggProbe
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, b)
	}
	return r
}

// oggDecodeClean checks that ffmpeg decodes the file without a word.
func oggDecodeClean(t *testing.T, path string) {
	t.Helper()
	oggNeedTools(t, "ffmpeg")
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg -v error -i %s -f null -: %v\n%s", path, err, out)
	}
}

// oggPacketTimes lists the pts (seconds) of the audio packets ffprobe reads.
func oggPacketTimes(t *testing.T, path string) []float64 {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var ts []float64
	for _, l := range strings.Fields(string(b)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe packet line %q", l)
		}
		ts = append(ts, v)
	}
	return ts
}

func oggSeconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("not a number of seconds: %q", s)
	}
	return v
}

var oggOpusTrack = media.Track{Index: 0, MID: "0", Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2}

// writeOggPackets muxes packets 20 ms apart, with a gap of gap after the
// packet at gapAfter, into path; flushEvery > 0 calls Flush that often
// (in packets). It returns the muxer (not closed) and the file.
func writeOggPackets(t *testing.T, path string, packets [][]byte, gapAfter int, gap time.Duration) (muxer, *os.File) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := newOgg(f, []media.Track{oggOpusTrack})
	if err != nil {
		t.Fatal(err)
	}
	pts := time.Duration(0)
	for i, p := range packets {
		if err := m.WriteFrame(&media.Frame{Track: 0, PTS: pts, Data: p}); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		pts += 20 * time.Millisecond
		if i == gapAfter {
			pts += gap
		}
	}
	return m, f
}

func TestOggOpusWithGap(t *testing.T) {
	packets := oggEncodeOpus(t, 3)
	n := len(packets)
	path := filepath.Join(t.TempDir(), "out.ogg")
	m, f := writeOggPackets(t, path, packets, 49, 2*time.Second)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages := oggParse(t, data)
	if pages[0].flags&oggBOS == 0 || !bytes.HasPrefix(pages[0].packets[0], []byte("OpusHead")) {
		t.Fatalf("first page: flags %#x, not a BOS OpusHead page", pages[0].flags)
	}
	head := pages[0].packets[0]
	if head[9] != 2 || binary.LittleEndian.Uint16(head[10:]) != oggPreSkip || binary.LittleEndian.Uint32(head[12:]) != 48000 {
		t.Errorf("OpusHead % x", head)
	}
	if !bytes.HasPrefix(pages[1].packets[0], []byte("OpusTags")) {
		t.Errorf("second page is not OpusTags")
	}
	last := pages[len(pages)-1]
	if last.flags&oggEOS == 0 {
		t.Errorf("last page has no EOS flag")
	}
	wantEnd := int64(n*960 + 100*960)
	if last.granule != wantEnd {
		t.Errorf("last granule %d, want %d", last.granule, wantEnd)
	}
	var real, silent int
	for i, p := range pages {
		if p.seq != uint32(i) || p.serial != pages[0].serial {
			t.Errorf("page %d: seq %d serial %x", i, p.seq, p.serial)
		}
		for _, pkt := range p.packets {
			switch {
			case i < 2:
			case bytes.Equal(pkt, oggSilence):
				silent++
			default:
				real++
			}
		}
		// Crash safety: no page holds more than 1 s of audio.
		if len(p.packets)*960 > 48000 {
			t.Errorf("page %d holds %d packets: more than 1 s", i, len(p.packets))
		}
	}
	if real != n || silent != 100 {
		t.Errorf("%d packets and %d silence frames in the file, want %d and 100", real, silent, n)
	}

	r := oggFFprobe(t, path)
	if len(r.Streams) != 1 || r.Streams[0].CodecName != "opus" || r.Streams[0].Channels != 2 {
		t.Fatalf("ffprobe streams: %+v", r.Streams)
	}
	want := float64(n)*0.02 + 2
	if d := oggSeconds(t, r.Format.Duration); math.Abs(d-want) > 0.03 {
		t.Errorf("duration %.3f s, want %.3f s (gap kept)", d, want)
	}
	if st := oggSeconds(t, r.Streams[0].StartTime); st != 0 {
		t.Errorf("start time %.4f s, want 0", st)
	}
	oggDecodeClean(t, path)

	// Packets sit at their PTS: the 51st real one 2 s after the 50th.
	ts := oggPacketTimes(t, path)
	if len(ts) != n+100 {
		t.Fatalf("ffprobe reads %d packets, want %d", len(ts), n+100)
	}
	// (ffmpeg shows a packet's pts as granule - pre-skip: 6.5 ms early,
	// the encoder delay that the pre-skip undoes.)
	const early = float64(oggPreSkip) / 48000
	if math.Abs(ts[0]+early) > 0.0001 || math.Abs(ts[150]+early-3.0) > 0.0001 || math.Abs(ts[149]+early-2.98) > 0.0001 {
		t.Errorf("packets at %.4f, ..., %.4f, %.4f; want -0.0065, ..., 2.9735 (silence), 2.9935", ts[0], ts[149], ts[150])
	}
	// Decoded to PCM, the gap is still there.
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	if samples := len(out) / 2; math.Abs(float64(samples)-want*48000) > 960 {
		t.Errorf("decodes to %d samples, want %.0f", samples, want*48000)
	}
}

func TestOggKilledAfterFlushDecodes(t *testing.T) {
	packets := oggEncodeOpus(t, 3)
	dir := t.TempDir()
	path := filepath.Join(dir, "live.ogg")
	m, _ := writeOggPackets(t, path, packets[:100], -1, 0)
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	// More packets after the flush that would be lost by a kill: not flushed.
	for i, p := range packets[100:110] {
		pts := time.Duration(100+i) * 20 * time.Millisecond
		if err := m.WriteFrame(&media.Frame{PTS: pts, Data: p}); err != nil {
			t.Fatal(err)
		}
	}
	// "SIGKILL": copy the file as it is on disk, without Close.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(dir, "killed.ogg")
	if err := os.WriteFile(killed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	oggDecodeClean(t, killed)
	r := oggFFprobe(t, killed)
	if d := oggSeconds(t, r.Format.Duration); math.Abs(d-2.0) > 0.03 {
		t.Errorf("killed file lasts %.3f s, want 2.000", d)
	}
}

func TestOggPageSpanWithoutFlush(t *testing.T) {
	// Without any Flush, a page is written at least every second of audio.
	var buf oggSeekBuffer
	m, err := newOgg(&buf, []media.Track{oggOpusTrack})
	if err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0xfc, 0xff, 0xfe} // CELT 20 ms stereo
	for i := range 150 {
		if err := m.WriteFrame(&media.Frame{PTS: time.Duration(i) * 20 * time.Millisecond, Data: pkt}); err != nil {
			t.Fatal(err)
		}
	}
	pages := oggParse(t, buf.b)
	want := []int64{0, 0, 50 * 960, 100 * 960, 150 * 960}
	if g := oggGranules(pages); !slices.Equal(g, want) {
		t.Fatalf("granules %v, want %v: 2 headers + one page per second", g, want)
	}
}

func TestOggRejectsOtherTracks(t *testing.T) {
	var buf oggSeekBuffer
	for _, tracks := range [][]media.Track{
		nil,
		{{Index: 0, Kind: "audio", Codec: media.PCMU}},
		{oggOpusTrack, {Index: 1, Kind: "video", Codec: media.VP8}},
	} {
		_, err := newOgg(&buf, tracks)
		if err == nil {
			t.Errorf("%v: no error", tracks)
			continue
		}
		for _, tr := range tracks {
			if !strings.Contains(err.Error(), tr.Codec) {
				t.Errorf("%v: error %q does not name %s", tracks, err, tr.Codec)
			}
		}
	}
}

func TestOggOpusSamples(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want int
	}{
		{nil, 0},
		{[]byte{0xfc}, 960},             // CELT FB 20 ms, 1 frame
		{[]byte{0x78}, 960},             // config 15: hybrid FB 20 ms
		{[]byte{0x0b << 3}, 2880},       // SILK 60 ms
		{[]byte{0xfd}, 1920},            // code 1: two 20 ms frames
		{[]byte{0xff, 0x03}, 2880},      // code 3: three frames
		{[]byte{0xff}, 0},               // code 3 without its count byte
		{[]byte{0xff, 0x07}, 0},         // 140 ms: too long
		{[]byte{0x80 | 0x03, 48}, 5760}, // CELT 2.5 ms x 48
	} {
		if got := opusSamples(c.p); got != c.want {
			t.Errorf("opusSamples(% x) = %d, want %d", c.p, got, c.want)
		}
	}
}

func TestOggGranuleNeverGoesBack(t *testing.T) {
	var buf oggSeekBuffer
	m, _ := newOgg(&buf, []media.Track{oggOpusTrack})
	pkt := []byte{0xfc, 0xff, 0xfe}
	// Overlapping PTS (jitter) are moved to the previous packet's end; a
	// gap too long to fill is carried by the granule alone.
	const long = 11 * 60 * 1000
	for _, ms := range []int{0, 20, 35, 50, long, long + 10} {
		if err := m.WriteFrame(&media.Frame{PTS: time.Duration(ms) * time.Millisecond, Data: pkt}); err != nil {
			t.Fatal(err)
		}
		if err := m.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	g := oggGranules(oggParse(t, buf.b))
	want := []int64{0, 0, 960, 1920, 2880, 3840, long*48 + 960, long*48 + 1920, long*48 + 1920}
	if !slices.Equal(g, want) {
		t.Errorf("granules %v, want %v", g, want)
	}
}

func TestOggFillsGaps(t *testing.T) {
	var buf oggSeekBuffer
	m, _ := newOgg(&buf, []media.Track{oggOpusTrack})
	pkt := []byte{0xfc, 0xff, 0xfe}
	for _, ms := range []int{0, 20, 2020, 2050} {
		if err := m.WriteFrame(&media.Frame{PTS: time.Duration(ms) * time.Millisecond, Data: pkt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	pages := oggParse(t, buf.b)
	var silent, real int
	for _, p := range pages[2:] {
		for _, pkt := range p.packets {
			if bytes.Equal(pkt, oggSilence) {
				silent++
			} else {
				real++
			}
		}
	}
	// 40 ms to 2020 ms: 99 frames of silence; 2040 to 2050 ms: too short to fill.
	if silent != 99 || real != 4 {
		t.Errorf("%d silence frames and %d packets, want 99 and 4", silent, real)
	}
	if g := pages[len(pages)-1].granule; g != 2050*48+960 {
		t.Errorf("last granule %d, want %d", g, 2050*48+960)
	}
	// The 10 ms gap cut the page: the page before ends at 2040 ms.
	if g := pages[len(pages)-2].granule; g != 2040*48 {
		t.Errorf("granules %v: no page ending at 2040 ms", oggGranules(pages))
	}
}

func oggGranules(pages []oggPage) []int64 {
	g := make([]int64, len(pages))
	for i, p := range pages {
		g[i] = p.granule
	}
	return g
}

// oggSeekBuffer is an in-memory io.WriteSeeker.
type oggSeekBuffer struct {
	b   []byte
	pos int
}

func (s *oggSeekBuffer) Write(p []byte) (int, error) {
	if need := s.pos + len(p); need > len(s.b) {
		s.b = append(s.b, make([]byte, need-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *oggSeekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += int64(s.pos)
	case io.SeekEnd:
		off += int64(len(s.b))
	}
	s.pos = int(off)
	return off, nil
}

func TestOggFileSinkSegmentsAndKill(t *testing.T) {
	packets := oggEncodeOpus(t, 6)
	dir := t.TempDir()
	f, err := NewFile(FileConfig{
		Type:     "ogg",
		Name:     "ogg0",
		Template: filepath.Join(dir, "{bridge}-{seq}.ogg"),
		Segment:  2 * time.Second,
		Bridge:   "cam1",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.SetTracks([]media.Track{oggOpusTrack}); err != nil {
		t.Fatal(err)
	}
	base := time.Now()
	pts := 7 * time.Second // the bridge clock's origin is arbitrary
	write := func(p []byte) {
		t.Helper()
		if err := f.WriteFrame(&media.Frame{PTS: pts, Wall: base.Add(pts), Data: p}); err != nil {
			t.Fatal(err)
		}
		pts += 20 * time.Millisecond
	}
	for _, p := range packets[:110] { // a 2 s file, then 0.2 s of the next
		write(p)
	}
	pts += time.Second // a gap inside the second file
	for _, p := range packets[110:140] {
		write(p)
	}
	// "SIGKILL" now: the open file as it is on disk decodes, holding all
	// but at most the last second of its 1.8 s.
	cur := f.Status().Path
	data, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(dir, "killed.ogg")
	if err := os.WriteFile(killed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	oggDecodeClean(t, killed)
	d := oggSeconds(t, oggFFprobe(t, killed).Format.Duration)
	t.Logf("killed file: %.3f s of 1.8 s", d)
	if d < 1.8-1 || d > 1.8+0.03 {
		t.Errorf("killed file lasts %.3f s; 1.8 s were written", d)
	}
	for _, p := range packets[140:] {
		write(p)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var total float64
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("cam1-%04d.ogg", i))
		if i == 4 {
			if fileExists(p) {
				t.Errorf("%s: more files than expected", p)
			}
			break
		}
		oggDecodeClean(t, p)
		r := oggFFprobe(t, p)
		if len(r.Streams) != 1 || r.Streams[0].CodecName != "opus" {
			t.Errorf("%s: streams %+v", p, r.Streams)
		}
		d := oggSeconds(t, r.Format.Duration)
		total += d
		sc := fileReadSidecar(t, p)
		if math.Abs(sc.Duration+0.02-d) > 0.03 || sc.Type != "ogg" || len(sc.Tracks) != 1 {
			t.Errorf("%s: sidecar %+v, ffprobe duration %.3f", p, sc, d)
		}
	}
	// 6 s of packets + the 1 s gap, in files cut at 2 s of media.
	if want := float64(len(packets))*0.02 + 1; math.Abs(total-want) > 0.05 {
		t.Errorf("files last %.3f s together, want %.3f", total, want)
	}
}
