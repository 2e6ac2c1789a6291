package transcode

import (
	"errors"
	"io"
	"strconv"
)

// opusToAAC feeds Opus in Ogg and reads AAC-LC in ADTS. One per child.
type opusToAAC struct{ ogg oggWriter }

func (*opusToAAC) args(cfg Config) []string {
	return []string{"-f", "ogg", "-i", "pipe:0", "-map", "0:a:0",
		"-c:a", "aac", "-b:a", strconv.Itoa(cfg.Bitrate), "-ac", strconv.Itoa(cfg.Channels), "-ar", "48000",
		"-flush_packets", "1", "-f", "adts", "pipe:1"}
}

func (*opusToAAC) samples(pkt []byte) (int, int, error) {
	n, err := OpusSamples(pkt)
	return n, 48000, err
}

func (l *opusToAAC) start(w io.Writer) error {
	l.ogg = oggWriter{w: w, serial: 0x6a627472}
	return l.ogg.opusHeaders(2)
}

func (l *opusToAAC) write(_ io.Writer, pkt []byte, end int64) error {
	return l.ogg.page(pkt, end, 0)
}

// aacEncoderDelay is the priming of ffmpeg's native AAC encoder: ADTS has
// no field for it, its first frame encodes the 1024 samples before the input.
const aacEncoderDelay = 1024

func (*opusToAAC) read(r io.Reader, emit func(pkt []byte, samples, rate, delay int)) error {
	buf := make([]byte, 8192)
	for {
		if _, err := io.ReadFull(r, buf[:7]); err != nil {
			return err
		}
		h, err := ParseADTS(buf[:7])
		if err != nil {
			return err
		}
		if _, err := io.ReadFull(r, buf[7:h.FrameLen]); err != nil {
			return err
		}
		emit(buf[:h.FrameLen], h.Samples(), h.Rate, aacEncoderDelay)
	}
}

// aacToOpus feeds AAC in ADTS and reads Opus in Ogg.
type aacToOpus struct{}

func (*aacToOpus) args(cfg Config) []string {
	return []string{"-f", "aac", "-i", "pipe:0", "-map", "0:a:0",
		"-c:a", "libopus", "-b:a", strconv.Itoa(cfg.Bitrate), "-ac", strconv.Itoa(cfg.Channels), "-ar", "48000",
		"-frame_duration", "20", "-application", "lowdelay",
		"-page_duration", "20000", "-flush_packets", "1", "-f", "ogg", "pipe:1"}
}

func (*aacToOpus) samples(pkt []byte) (int, int, error) {
	h, err := ParseADTS(pkt)
	if err != nil {
		return 0, 0, err
	}
	if h.FrameLen != len(pkt) {
		return 0, 0, errors.New("adts: frame length differs from the packet's")
	}
	return h.Samples(), h.Rate, nil
}

func (*aacToOpus) start(io.Writer) error { return nil }

func (*aacToOpus) write(w io.Writer, pkt []byte, _ int64) error {
	_, err := w.Write(pkt)
	return err
}

func (*aacToOpus) read(r io.Reader, emit func(pkt []byte, samples, rate, delay int)) error {
	o := oggReader{r: r}
	head, err := o.next()
	if err != nil {
		return err
	}
	preSkip, err := opusPreSkip(head)
	if err != nil {
		return err
	}
	if _, err := o.next(); err != nil { // OpusTags
		return err
	}
	for {
		pkt, err := o.next()
		if err != nil {
			return err
		}
		n, err := OpusSamples(pkt)
		if err != nil {
			continue
		}
		emit(pkt, n, 48000, preSkip)
	}
}
