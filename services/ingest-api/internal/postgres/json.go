package postgres

import "encoding/json"

// renditionsJSON encodes rendition names for the jsonb column.
func renditionsJSON(names []string) string {
	b, _ := json.Marshal(names) // a []string always marshals
	return string(b)
}
