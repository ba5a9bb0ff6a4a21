"""The model, no Flask: raw records to clean columns, numpy features, the compiled forest, training and evaluation."""
