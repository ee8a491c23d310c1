package ginhttp

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
)

// openAPIYAML is the OpenAPI 3 document of the whole HTTP API, written by
// hand next to the handlers; TestOpenAPIMatchesRoutes keeps it true.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// LoadOpenAPI parses and validates the API document.
func LoadOpenAPI(ctx context.Context) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	doc, err := loader.LoadFromData(openAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return doc, nil
}

// Docs serves the API document and the page that renders it.
type Docs struct {
	json []byte
}

// NewDocs returns the docs routes; it fails if the embedded document does
// not load or validate.
func NewDocs(ctx context.Context) (*Docs, error) {
	doc, err := LoadOpenAPI(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	return &Docs{json: b}, nil
}

// Routes registers GET /openapi.json and GET /docs on r.
func (d *Docs) Routes(r gin.IRouter) {
	r.GET("/openapi.json", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "application/json", d.json)
	})
	r.GET("/docs", servePage("docs.html"))
}
