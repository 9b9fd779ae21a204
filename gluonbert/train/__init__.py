"""Training: BERT pretraining (``pretrain``), fine-tuning (``finetune``, ``strategies``),
device sharding, and the trainer layer (``trainer``:
parameter groups, layer-wise decay, schedules, stale gradients, clipping, accumulation,
mixed precision, the non-finite guard and exact checkpoints in ``state``)."""
