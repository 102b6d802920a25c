-- Roles: pae_writer for the pipeline, pae_reader (SELECT only) for the API and BI tools.
-- Roles are cluster-wide, so they are created only when missing.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pae_reader') then
        create role pae_reader login;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'pae_writer') then
        create role pae_writer login;
    end if;
end
$$;

grant usage on schema analytics to pae_reader, pae_writer;
grant select on all tables in schema analytics to pae_reader;
grant select, insert, update, delete on all tables in schema analytics to pae_writer;
grant usage, select on all sequences in schema analytics to pae_writer;
alter default privileges in schema analytics grant select on tables to pae_reader;
alter default privileges in schema analytics grant select, insert, update, delete on tables to pae_writer;
alter default privileges in schema analytics grant usage, select on sequences to pae_writer;
