//! BERT / RoBERTa encoder layers that expose every hidden layer.
