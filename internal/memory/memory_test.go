package memory_test

import (
	"testing"

	"github.com/assay-dev/assay/internal/evaluation"
	"github.com/assay-dev/assay/internal/memory"
	"github.com/assay-dev/assay/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) evaluation.Store { return memory.New() })
}
