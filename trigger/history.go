package trigger

import (
	"bytes"
	"encoding/json"
)

// HistoryMember is where a bundle keeps the arm's history ring: one JSON
// Sample per line, oldest first, the samples after the trigger included.
const HistoryMember = "dashcam/history.jsonl"

// EncodeHistory writes samples as JSON lines.
func EncodeHistory(samples []*Sample) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, s := range samples {
		_ = enc.Encode(s) // a Sample always encodes
	}
	return b.Bytes()
}
