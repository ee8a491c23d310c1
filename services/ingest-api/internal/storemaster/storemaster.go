// Package storemaster reads the Retail Pulse store master: a CSV of stores
// (area code, store name, store id) against which job visits are checked.
package storemaster

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Stores is a set of known store ids.
type Stores struct {
	ids map[string]struct{}
}

// Known tells whether id is in the store master.
func (s *Stores) Known(id string) bool {
	_, ok := s.ids[id]
	return ok
}

// Len is the number of stores.
func (s *Stores) Len() int { return len(s.ids) }

// Load reads the CSV file at path.
func Load(path string) (*Stores, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("store master: %w", err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("store master %s: %w", path, err)
	}
	return s, nil
}

// Parse reads a store master: a header naming a store id column
// (store_id or StoreID, any case) and one row per store; CRLF line ends,
// quoted names with commas and a UTF-8 byte order mark are accepted.
func Parse(r io.Reader) (*Stores, error) {
	br := bufio.NewReader(r)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	col := -1
	for i, h := range header {
		if n := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(h), "_", "")); n == "storeid" {
			col = i
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("no store_id or StoreID column in header %q", strings.Join(header, ","))
	}
	s := &Stores{ids: map[string]struct{}{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if col >= len(rec) {
			return nil, fmt.Errorf("line %d: no store id column", line)
		}
		if id := strings.TrimSpace(rec[col]); id != "" {
			s.ids[id] = struct{}{}
		}
	}
	return s, nil
}
