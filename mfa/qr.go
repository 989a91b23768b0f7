package mfa

import (
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// QRSVG renders text (an otpauth URI) as a QR code in SVG, in process:
// github.com/skip2/go-qrcode computes the modules (error correction level
// M, with the 4-module quiet zone) and this function draws them as one
// path, with no script, no external reference and no text (the secret is
// in the modules only).
func QRSVG(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	bits := q.Bitmap()
	n := strconv.Itoa(len(bits))
	var sb strings.Builder
	sb.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + n + " " + n +
		`" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="`)
	for y, row := range bits {
		for x, dark := range row {
			if dark {
				sb.WriteString("M" + strconv.Itoa(x) + " " + strconv.Itoa(y) + "h1v1h-1z")
			}
		}
	}
	sb.WriteString(`"/></svg>`)
	return sb.String(), nil
}
