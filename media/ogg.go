package media

// oggCRCTable is the table of Ogg's CRC-32 (RFC 3533): polynomial
// 0x04c11db7, not reflected, initial value 0, no final xor.
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// OggChecksum returns the CRC-32 of an Ogg page whose checksum field
// (bytes 22-25) is zero: the value that goes into that field.
func OggChecksum(page []byte) uint32 {
	var crc uint32
	for _, b := range page {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
	}
	return crc
}
