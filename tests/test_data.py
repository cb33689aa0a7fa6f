from training.data import flatten_quotes, load_annotations, to_documents


def test_load_annotations_has_one_typed_row_per_document_and_round_trips(seed_docs):
    ds = load_annotations(origin="seed")
    assert ds.num_rows == 5
    assert ds.features["quotes"].feature["content"].length == 2
    assert [d.to_dict() for d in to_documents(ds)] == [d.to_dict() for d in seed_docs]


def test_flatten_quotes_gives_one_row_per_quote_with_resolved_text(seed_docs):
    quotes = flatten_quotes(load_annotations(origin="seed"))
    assert quotes.num_rows == sum(len(d.quotes) for d in seed_docs)
    kinds = quotes.features["kind"]
    row = next(r for r in quotes if r["doc_id"] == "seed-002" and r["speaker"] == "shoigu" and kinds.int2str(r["kind"]) == "direct")
    assert row["mention_text"] == "Shoigu"
    assert row["content_text"].startswith("Chúng tôi không hề giấu giếm")


def test_language_filter_keeps_only_that_language():
    ds = load_annotations(origin="seed", langs=["vi"])
    assert sorted(ds["doc_id"]) == ["seed-002", "seed-003"]
