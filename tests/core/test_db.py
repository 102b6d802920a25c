import pytest
import sqlalchemy as sa

from core.db import migrate, migration_files

SEED_TABLES = {
    "predictions": {"id", "workspace_id", "prediction_type", "target_metric", "prediction_date", "predicted_value",
                    "confidence_lower", "confidence_upper", "confidence_level", "model_version", "created_at"},
    "ml_models": {"id", "model_name", "model_type", "version", "workspace_id", "target_metric", "training_params",
                  "performance_metrics", "feature_importance", "model_artifacts_path", "training_data_start",
                  "training_data_end", "is_active", "created_at", "last_used_at"},
    "churn_predictions": {"id", "workspace_id", "user_id", "prediction_date", "churn_probability", "risk_score",
                          "risk_factors", "recommended_actions", "days_until_churn", "model_version", "created_at"},
    "ml_features": {"id", "entity_type", "entity_id", "feature_set", "features", "computed_at", "version"},
}
SEED_INDEXES = {"idx_predictions_workspace", "idx_predictions_date", "idx_churn_risk", "idx_churn_user",
                "idx_features_entity"}


def test_migrations_are_numbered_uniquely():
    names = [p.name for p in migration_files()]
    assert names == sorted(names) and len({n[:3] for n in names}) == len(names)


def test_migrate_is_idempotent(engine):
    assert migrate(engine) == []  # the session fixture applied everything already
    with engine.connect() as conn:
        n = conn.execute(sa.text("select count(*) from analytics.schema_migrations")).scalar_one()
    assert n == len(migration_files())


def test_seed_tables_have_every_column_and_index(engine):
    insp = sa.inspect(engine)
    for table, cols in SEED_TABLES.items():
        have = {c["name"] for c in insp.get_columns(table, schema="analytics")}
        assert cols <= have, f"{table} lacks {cols - have}"
    with engine.connect() as conn:
        idx = set(conn.execute(sa.text("select indexname from pg_indexes where schemaname = 'analytics'")).scalars())
    assert SEED_INDEXES <= idx


def test_reader_role_reads_but_cannot_write(engine):
    with engine.connect() as conn:
        ws = conn.execute(sa.text("insert into analytics.entities (entity_type, entity_id, external_id)"
                                  " values ('workspace', gen_random_uuid(), 'reader-visible') returning entity_id"
                                  )).scalar_one()
        conn.execute(sa.text("set role pae_reader"))  # same transaction: the reader sees the row it may read
        assert conn.execute(sa.text("select external_id from analytics.entities where entity_id = :id"),
                            {"id": ws}).scalar_one() == "reader-visible"
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text(
                "insert into analytics.entities (entity_type, entity_id, external_id)"
                " values ('workspace', gen_random_uuid(), 'x')"))
        conn.rollback()


def test_writer_role_can_write(engine):
    with engine.connect() as conn:
        conn.execute(sa.text("set role pae_writer"))
        conn.execute(sa.text(
            "insert into analytics.entities (entity_type, entity_id, external_id)"
            " values ('workspace', gen_random_uuid(), 'writer-test')"))
        conn.rollback()


def test_changed_migration_is_refused(engine, tmp_path):
    for p in migration_files():
        (tmp_path / p.name).write_text(p.read_text())
    first = migration_files()[0]
    (tmp_path / first.name).write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(engine, tmp_path)
