"""Training: BERT pretraining (``train_bert``), device sharding and pretrained folders."""
