// Package web holds Assay's practice page: plain HTML, CSS and JavaScript
// modules, embedded in the binary so that the page needs no build step, no
// CDN and no file beside the executable. The HTTP layer serves index.html
// at / and the assets/ folder at /assets/.
package web

import "embed"

// FS holds index.html and assets/.
//
//go:embed index.html assets
var FS embed.FS
