{#
  Write-audit-publish for the marts (see dbt_project.yml). Run at the end of every invocation: when no
  model or test of it errored or failed, every mart it built into marts_audit replaces its window in
  marts.* (delete + insert), all marts in one transaction (the SQL this macro renders is the hook, which dbt runs inside one); a build without a window replaces them whole.
  Otherwise nothing is published: marts.* keeps the window's last good content, and marts_audit holds
  the failed build for diagnosis.
#}
{% macro publish_marts(results) %}
  {%- if execute -%}
    {%- set failed = [] -%}
    {%- set built = [] -%}
    {%- for result in results -%}
      {%- if result.status in ('error', 'fail', 'runtime error') -%}
        {%- do failed.append(result.node.unique_id) -%}
      {%- elif result.node.resource_type == 'model' and result.node.fqn[1] == 'marts'
            and result.node.config.materialized == 'table' and result.status == 'success' -%}
        {%- do built.append(result.node) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if failed -%}
      {{ log("not published: " ~ failed | join(", ") ~ " failed; marts_audit holds the failed build", info=True) }}
    {%- elif built -%}
      {%- set windowed = var('min_date') and var('max_date') -%}
        create schema if not exists marts;
        {%- for node in built %}
          {%- if windowed %}
        create table if not exists marts.{{ node.name }} as select * from {{ node.schema }}.{{ node.name }} limit 0;
        delete from marts.{{ node.name }} where {{ in_partition_window(node.config.get('partition_column', 'flight_date')) }};
        insert into marts.{{ node.name }} by name select * from {{ node.schema }}.{{ node.name }};
          {%- else %}
        create or replace table marts.{{ node.name }} as select * from {{ node.schema }}.{{ node.name }};
          {%- endif %}
        {%- endfor %}
      {{ log("published " ~ built | map(attribute='name') | join(", ") ~ " into marts", info=True) }}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
