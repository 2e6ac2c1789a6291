// Package rtmpguard checks a peer's RTMP byte stream before gomedia's
// parser sees it. gomedia's chunk reader spins forever on a chunk size of
// 0 and on a message of length 0 (it never consumes the rest of its
// input), so a hostile or broken peer could pin a core and block the
// connection's shutdown. A Guard follows the chunk stream the way
// gomedia's reader does and refuses those inputs, and the irregular ones
// where the two could disagree, with an error.
package rtmpguard

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// handshakeLen is C0+C1+C2 (or S0+S1+S2): what precedes the chunk stream.
const handshakeLen = 1 + 1536 + 1536

// maxChunkSize is the largest chunk size RTMP allows (31 bits, and
// servers cap it far lower); larger is refused.
const maxChunkSize = 1 << 24

// maxStreams bounds the chunk streams a peer may open.
const maxStreams = 64

// Parser states, as gomedia's.
const (
	basicHead = iota
	msgHead
	extTS
	payload
)

// Guard follows one direction of an RTMP connection. The zero value is
// ready for a stream that starts with the handshake.
type Guard struct {
	started   bool
	skip      int
	chunkSize uint32
	state     int
	head      [3]byte // basic header bytes collected
	nhead     int
	hdr       [11]byte // message header (or extended timestamp) bytes collected
	nhdr      int
	fmt       byte
	inChunk   bool   // in a chunk's payload
	left      uint32 // its bytes still to come
	cur       *chunkStream
	streams   map[uint32]*chunkStream
}

type chunkStream struct {
	ts     uint32 // the header's timestamp field, as gomedia keeps it
	msgLen uint32
	typ    byte
	got    uint32  // bytes of the current message so far
	first  [4]byte // its first bytes (a set chunk size's value)
	cmd    []byte  // an AMF0 command message being collected
}

// typeCommand is the message type of AMF0 commands; maxCommand bounds
// their size (a real command takes well under 1 kB).
const (
	typeCommand = 20
	maxCommand  = 64 << 10
)

// ErrMalformed wraps every refusal.
var ErrMalformed = errors.New("rtmp: malformed chunk stream")

var (
	errZeroLen    = fmt.Errorf("%w: message of length 0", ErrMalformed)
	errNewLen     = fmt.Errorf("%w: message header changes a message in progress", ErrMalformed)
	errTooMany    = fmt.Errorf("%w: more than %d chunk streams", ErrMalformed, maxStreams)
	errChunkSize0 = fmt.Errorf("%w: chunk size 0", ErrMalformed)
	errLongString = fmt.Errorf("%w: AMF0 long string in a command", ErrMalformed)
)

// longString reports whether gomedia's AMF0 decoding of a command (its
// handleCommand or handleCommandRes: one item, then decodeAmf0 of the
// rest) would meet a long string: it allocates the declared length, up to
// 4 GiB, before looking at the data. The walk follows gomedia's decoders
// step by step and stops where they would panic (they are recovered from).
func longString(msg []byte) bool {
	n, long, ok := amfItem(msg)
	if long || !ok {
		return long
	}
	data := msg[n:]
	for len(data) > 0 {
		var n int
		switch data[0] {
		case 8: // ECMA array: gomedia skips 5 bytes, then reads an object
			if len(data) < 5 {
				return false
			}
			data = data[5:]
			fallthrough
		case 3: // object
			n, long, ok = amfObject(data)
		default:
			n, long, ok = amfItem(data)
		}
		if long || !ok || n > len(data) {
			return long
		}
		data = data[n:]
	}
	return false
}

// amfItem mirrors gomedia's amf0Item.decode: the bytes it takes, whether
// it is a long string, and false where gomedia would panic.
func amfItem(data []byte) (n int, long, ok bool) {
	if len(data) == 0 {
		return 0, false, false
	}
	switch data[0] {
	case 0: // number
		return 9, false, len(data) >= 9
	case 1: // boolean
		return 2, false, len(data) >= 2
	case 2: // string
		if len(data) < 3 {
			return 0, false, false
		}
		l := int(binary.BigEndian.Uint16(data[1:]))
		return 3 + l, false, len(data) >= 3+l
	case 0x0c: // long string
		return 0, true, true
	case 8: // ECMA array marker: gomedia skips its count
		return 5, false, true
	case 5, 6: // null, undefined
		return 1, false, true
	}
	return 0, false, false
}

// amfObject mirrors gomedia's amfObject.decode.
func amfObject(data []byte) (n int, long, ok bool) {
	total := 1
	data = data[1:]
	isArray := false
	for len(data) > 0 {
		if len(data) < 3 {
			return 0, false, false
		}
		if data[0] == 0 && data[1] == 0 && data[2] == 9 {
			total += 3
			if isArray {
				isArray = false
				continue
			}
			break
		}
		l := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+l {
			return 0, false, false
		}
		m, long, ok := amfItem(data[2+l:])
		if long || !ok {
			return 0, long, ok
		}
		if data[2+l] == 8 {
			isArray = true
		}
		if len(data) < 2+l+m {
			return 0, false, false
		}
		data = data[2+l+m:]
		total += 2 + l + m
	}
	return total, false, true
}

// Check follows b, the next bytes from the peer, and returns an error when
// they must not reach gomedia; the connection should then be dropped (the
// Guard is not usable after an error).
func (g *Guard) Check(b []byte) error {
	if !g.started {
		g.started, g.skip, g.chunkSize = true, handshakeLen, 128
		g.streams = map[uint32]*chunkStream{}
	}
	if g.skip > 0 {
		n := min(g.skip, len(b))
		g.skip -= n
		b = b[n:]
	}
	for len(b) > 0 {
		switch g.state {
		case basicHead:
			g.head[g.nhead] = b[0]
			g.nhead++
			b = b[1:]
			need := 1
			switch g.head[0] & 0x3f {
			case 0:
				need = 2
			case 1:
				need = 3
			}
			if g.nhead < need {
				continue
			}
			g.nhead = 0
			csid := uint32(g.head[0] & 0x3f)
			switch csid {
			case 0:
				csid = uint32(g.head[1]) + 64
			case 1:
				csid = uint32(g.head[2])*256 + uint32(g.head[1]) + 64
			}
			cs := g.streams[csid]
			if cs == nil {
				if len(g.streams) >= maxStreams {
					return errTooMany
				}
				cs = &chunkStream{}
				g.streams[csid] = cs
			}
			g.cur, g.fmt = cs, g.head[0]>>6
			g.state = msgHead
			if g.fmt == 3 {
				g.state = payload
				if cs.ts == 0xffffff {
					g.state = extTS
				}
			}
		case msgHead:
			need := [3]int{11, 7, 3}[g.fmt]
			n := copy(g.hdr[g.nhdr:need], b)
			g.nhdr += n
			b = b[n:]
			if g.nhdr < need {
				continue
			}
			g.nhdr = 0
			cs := g.cur
			if g.fmt <= 1 {
				l := uint32(g.hdr[3])<<16 | uint32(g.hdr[4])<<8 | uint32(g.hdr[5])
				if cs.got > 0 && l != cs.msgLen {
					return errNewLen
				}
				cs.msgLen, cs.typ = l, g.hdr[6]
			}
			cs.ts = uint32(g.hdr[0])<<16 | uint32(g.hdr[1])<<8 | uint32(g.hdr[2])
			g.state = payload
			if cs.ts == 0xffffff {
				g.state = extTS
			}
		case extTS:
			n := copy(g.hdr[g.nhdr:4], b)
			g.nhdr += n
			b = b[n:]
			if g.nhdr < 4 {
				continue
			}
			g.nhdr = 0
			g.cur.ts = binary.BigEndian.Uint32(g.hdr[:4])
			g.state = payload
		case payload:
			cs := g.cur
			if cs.msgLen == 0 {
				return errZeroLen
			}
			if !g.inChunk {
				// This chunk's payload: what the message lacks, at most a chunk.
				g.inChunk, g.left = true, min(cs.msgLen-cs.got, g.chunkSize)
			}
			n := min(uint32(len(b)), g.left)
			g.left -= n
			if cs.got < 4 {
				copy(cs.first[cs.got:], b[:min(n, 4-cs.got)])
			}
			if cs.typ == typeCommand {
				if cs.msgLen > maxCommand {
					return fmt.Errorf("%w: command message of %d bytes", ErrMalformed, cs.msgLen)
				}
				if cs.got == 0 {
					cs.cmd = cs.cmd[:0]
				}
				cs.cmd = append(cs.cmd, b[:n]...)
			}
			cs.got += n
			b = b[n:]
			if g.left > 0 {
				continue
			}
			g.inChunk = false
			g.state = basicHead
			if cs.got == cs.msgLen {
				cs.got = 0
				if cs.typ == typeCommand && longString(cs.cmd) {
					return errLongString
				}
				if cs.typ == 1 && cs.msgLen >= 4 { // set chunk size, applied as gomedia does
					size := binary.BigEndian.Uint32(cs.first[:])
					if size == 0 {
						return errChunkSize0
					}
					if size > maxChunkSize {
						return fmt.Errorf("%w: chunk size %d", ErrMalformed, size)
					}
					g.chunkSize = size
				}
			}
		}
	}
	if g.state == payload && g.cur.msgLen == 0 { // refused now, not at the next read
		return errZeroLen
	}
	return nil
}
