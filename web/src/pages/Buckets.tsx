import { PlusOutlined } from '@ant-design/icons';
import { Button, Checkbox, Form, Input, Modal, Popconfirm, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router-dom';
import { api, type Bucket, get, type Page, qs } from '../api';
import { CursorTable, formatBytes, formatTime, PageTitle, useAction } from '../components';

export function BucketsPage() {
  const { t } = useTranslation();
  const nav = useNavigate();
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm();
  const create = useAction((v: { name: string; versioning?: boolean }) => api('POST', '/buckets', v), {
    invalidate: [['buckets']],
    success: t('buckets.created'),
    onSuccess: (_, v) => {
      setCreating(false);
      form.resetFields();
      nav(`/buckets/${v.name}`);
    },
  });
  const del = useAction((name: string) => api('DELETE', `/buckets/${encodeURIComponent(name)}`), {
    invalidate: [['buckets']],
    success: t('common.deleted'),
  });
  return (
    <>
      <PageTitle
        title={t('nav.buckets')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setCreating(true)}>
            {t('buckets.create')}
          </Button>
        }
      />
      <CursorTable<Bucket>
        queryKey={['buckets', 'list']}
        fetch={(cursor, limit) => get<Page<Bucket>>(`/buckets${qs({ cursor, limit })}`)}
        rowKey="name"
        filterText={(b) => b.name}
        emptyText={t('buckets.empty')}
        columns={[
          { title: t('common.name'), dataIndex: 'name', render: (n: string) => <Link to={`/buckets/${n}`}>{n}</Link> },
          { title: t('buckets.region'), dataIndex: 'region', responsive: ['md'] },
          {
            title: t('buckets.versioning'),
            dataIndex: 'versioning',
            render: (v: string) => <Tag color={v === 'Enabled' ? 'green' : 'default'}>{t(`buckets.versioning${v}`)}</Tag>,
          },
          { title: t('buckets.objects'), dataIndex: 'objectCount' },
          { title: t('buckets.size'), dataIndex: 'sizeBytes', render: formatBytes },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, b) => (
              <Popconfirm title={t('buckets.confirmDelete', { name: b.name })} onConfirm={() => del.mutate(b.name)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal
        open={creating}
        title={t('buckets.create')}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t('common.create')}
        cancelText={t('common.cancel')}
        confirmLoading={create.isPending}
      >
        <Form form={form} layout="vertical" onFinish={(v) => create.mutate({ name: v.name, versioning: !!v.versioning })}>
          <Form.Item
            label={t('common.name')}
            name="name"
            extra={t('buckets.nameHint')}
            rules={[
              { required: true, message: t('validation.required') },
              { pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, message: t('validation.bucketName') },
            ]}
          >
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item name="versioning" valuePropName="checked">
            <Checkbox>{t('buckets.enableVersioning')}</Checkbox>
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
