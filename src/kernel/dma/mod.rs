//! DMA mapping support (Linux: kernel/dma/).
pub mod swiotlb;
